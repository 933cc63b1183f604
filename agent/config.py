"""Service configuration: YAML loaded once into frozen, validated objects.

An error names the file, the key path and what was expected, e.g.::

    /etc/standardiste/standardiste.yaml: ari.url: expected an http:// or https:// URL, got 'localhost'

`standardiste check-config FILE` runs exactly this code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import yaml

DEFAULT_APP: Final = "standardiste"
DEFAULT_GREETING: Final = (
    "Bonjour, vous êtes bien chez votre artisan. "
    "Je suis l'assistant automatique de l'entreprise, je vais prendre votre demande."
)


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message says where and what was expected."""

    def __init__(self, file: str, path: str, expected: str, got: object = None) -> None:
        self.file = file
        self.path = path
        self.expected = expected
        where = f"{file}: {path}" if path else file
        msg = f"{where}: expected {expected}"
        if got is not None:
            msg += f", got {_short(got)}"
        super().__init__(msg)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Node:
    """A mapping being read, with its file and key path, that refuses unknown keys when closed."""

    def __init__(self, file: str, path: str, data: object) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(file, path, "a mapping of keys to values", data)
        self.file = file
        self.path = path
        self._data: Mapping[str, Any] = data
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, expected: str, got: object = None) -> ConfigError:
        return ConfigError(self.file, self._key(key), expected, got)

    def has(self, key: str) -> bool:
        return key in self._data

    def raw(self, key: str, default: object = None) -> Any:
        self._seen.add(key)
        return self._data.get(key, default)

    def node(self, key: str, *, required: bool = False) -> Node:
        if key not in self._data:
            if required:
                raise self.error(key, "a section (mapping)")
            self._seen.add(key)
            return Node(self.file, self._key(key), {})
        return Node(self.file, self._key(key), self.raw(key))

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.raw(key)
        if value is None:
            if required or default is None:
                raise self.error(key, "a string (required)")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "a non-empty string", value)
        return value

    def opt_str(self, key: str) -> str | None:
        if self._data.get(key) is None:
            self._seen.add(key)
            return None
        return self.text(key)

    def integer(self, key: str, default: int, *, lo: int, hi: int) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(key, f"an integer from {lo} to {hi}", value)
        return value

    def number(self, key: str, default: float, *, lo: float, hi: float) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise self.error(key, f"a number from {lo} to {hi}", value)
        return float(value)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(key, default)
        if value not in choices:
            raise self.error(key, "one of " + ", ".join(choices), value)
        return str(value)

    def close(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored."""
        for key in self._data:
            if key not in self._seen:
                raise ConfigError(self.file, self._key(str(key)), "no such key (unknown or misspelt)")


@dataclass(frozen=True)
class AriConfig:
    url: str
    """Base URL of Asterisk's HTTP server, without /ari (e.g. http://127.0.0.1:8088)."""
    username: str
    password: str
    app: str


@dataclass(frozen=True)
class PathsConfig:
    prompts: Path
    """Where pre-rendered prompts (8 kHz WAV) are written and read; Asterisk must read it too."""


@dataclass(frozen=True)
class CallConfig:
    greeting: str
    max_greeting_seconds: float
    """Longest a greeting may play before the call gives up waiting for it, seconds."""


@dataclass(frozen=True)
class Config:
    file: str
    ari: AriConfig
    paths: PathsConfig
    call: CallConfig
    log_level: str


def _read_password(ari: Node) -> str:
    """The ARI password comes from a secrets file or the environment, never from the YAML."""
    if ari.has("password"):
        raise ari.error("password", "no password in the YAML: use password_file or password_env")
    file_name = ari.opt_str("password_file")
    env_name = ari.text("password_env", "STANDARDISTE_ARI_PASSWORD")
    if file_name:
        path = Path(file_name)
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ari.error("password_file", "a readable file holding the ARI password",
                            f"{file_name} ({exc.strerror})") from None
        if not secret:
            raise ari.error("password_file", "a file holding a non-empty password", file_name)
        return secret
    secret = os.environ.get(env_name, "")
    if not secret:
        raise ari.error("password_file",
                        f"a secrets file, or the environment variable {env_name} set")
    return secret


def parse_config(data: object, file: str) -> Config:
    root = Node(file, "", data if data is not None else {})
    ari = root.node("ari", required=True)
    url = ari.text("url", "http://127.0.0.1:8088")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ari.error("url", "an http:// or https:// URL of Asterisk's HTTP server", url)
    ari_cfg = AriConfig(
        url=url.rstrip("/").removesuffix("/ari"),
        username=ari.text("username", "standardiste"),
        password=_read_password(ari),
        app=ari.text("app", DEFAULT_APP),
    )
    ari.close()

    paths = root.node("paths")
    paths_cfg = PathsConfig(prompts=Path(paths.text("prompts", "/var/lib/standardiste/prompts")))
    paths.close()

    call = root.node("call")
    call_cfg = CallConfig(
        greeting=call.text("greeting", DEFAULT_GREETING),
        max_greeting_seconds=call.number("max_greeting_seconds", 30.0, lo=1.0, hi=300.0),
    )
    call.close()

    log_level = root.choice("log_level", "info", ("debug", "info", "warning", "error"))
    root.close()
    return Config(file=file, ari=ari_cfg, paths=paths_cfg, call=call_cfg, log_level=log_level)


def load_config(path: str | Path) -> Config:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, "", "a readable YAML file", exc.strerror) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(file, "", f"valid YAML ({problem} at {where})") from None
    return parse_config(data, file)
