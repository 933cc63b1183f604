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

from agent.audio.vad import (
    DEFAULT_AGGRESSIVENESS,
    DEFAULT_HANGOVER_MS,
    DEFAULT_MIN_RMS,
    DEFAULT_MIN_UTTERANCE_MS,
    DEFAULT_RESUME_FRAMES,
    DEFAULT_START_FRAMES,
    DEFAULT_START_WINDOW,
    VadSettings,
)
from agent.telephony.media import FORMATS, MAX_LEAD_FRAMES, BargeInSettings, MediaSettings
from agent.tts.prompts import GOODBYE_TEXT

DEFAULT_APP: Final = "standardiste"
DEFAULT_GREETING: Final = (
    "Bonjour, vous êtes bien chez votre artisan. "
    "Je suis l'assistant automatique de l'entreprise. Décrivez votre demande, elle sera enregistrée."
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

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false", value)
        return value

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
    messages: Path
    """Where callers' spoken messages are saved (the dialplan's STANDARDISTE_MESSAGES too)."""
    models: Path
    """Where `make models` installed the production French models (stand-ins are used without)."""


@dataclass(frozen=True)
class CallConfig:
    greeting: str
    goodbye: str
    first_turn_wait_seconds: float
    """Silence after the greeting before the call is closed, seconds."""
    next_turn_wait_seconds: float
    """Pause after an utterance that means the caller has finished, seconds."""


@dataclass(frozen=True)
class Config:
    file: str
    ari: AriConfig
    paths: PathsConfig
    call: CallConfig
    media: MediaSettings
    log_level: str


def _parse_media(media: Node) -> MediaSettings:
    fmt = media.choice("format", "ulaw", tuple(FORMATS))
    vad = media.node("vad")
    vad_cfg = VadSettings(
        aggressiveness=vad.integer("aggressiveness", DEFAULT_AGGRESSIVENESS, lo=0, hi=3),
        start_frames=vad.integer("start_frames", DEFAULT_START_FRAMES, lo=1, hi=10),
        start_window=vad.integer("start_window", DEFAULT_START_WINDOW, lo=1, hi=20),
        resume_frames=vad.integer("resume_frames", DEFAULT_RESUME_FRAMES, lo=1, hi=20),
        hangover_ms=vad.integer("hangover_ms", DEFAULT_HANGOVER_MS, lo=100, hi=5000),
        min_utterance_ms=vad.integer("min_utterance_ms", DEFAULT_MIN_UTTERANCE_MS, lo=0, hi=2000),
        min_rms=vad.number("min_rms", DEFAULT_MIN_RMS, lo=0.0, hi=10000.0),
    )
    if vad_cfg.start_frames > vad_cfg.start_window:
        raise vad.error("start_frames", f"at most start_window ({vad_cfg.start_window})", vad_cfg.start_frames)
    vad.close()
    barge = media.node("barge_in")
    defaults = BargeInSettings()
    barge_cfg = BargeInSettings(
        enabled=barge.flag("enabled", defaults.enabled),
        min_frames=barge.integer("min_frames", defaults.min_frames, lo=1, hi=10),
        guard_ms=barge.integer("guard_ms", defaults.guard_ms, lo=0, hi=2000),
        echo_return_loss_db=barge.number("echo_return_loss_db", defaults.echo_return_loss_db, lo=0.0, hi=60.0),
    )
    barge.close()
    settings = MediaSettings(
        format=fmt,
        bind_host=media.text("bind_host", "127.0.0.1"),
        lead_frames=media.integer("lead_frames", 1, lo=0, hi=MAX_LEAD_FRAMES),
        vad=vad_cfg,
        barge_in=barge_cfg,
    )
    media.close()
    return settings


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
    paths_cfg = PathsConfig(prompts=Path(paths.text("prompts", "/var/lib/standardiste/prompts")),
                            messages=Path(paths.text("messages", "/var/lib/standardiste/messages")),
                            models=Path(paths.text("models", "/var/lib/standardiste/models")))
    paths.close()

    call = root.node("call")
    call_cfg = CallConfig(
        greeting=call.text("greeting", DEFAULT_GREETING),
        goodbye=call.text("goodbye", GOODBYE_TEXT),
        first_turn_wait_seconds=call.number("first_turn_wait_seconds", 8.0, lo=1.0, hi=60.0),
        next_turn_wait_seconds=call.number("next_turn_wait_seconds", 3.0, lo=0.5, hi=30.0),
    )
    call.close()
    media_cfg = _parse_media(root.node("media"))

    log_level = root.choice("log_level", "info", ("debug", "info", "warning", "error"))
    root.close()
    return Config(file=file, ari=ari_cfg, paths=paths_cfg, call=call_cfg, media=media_cfg, log_level=log_level)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a ConfigError naming the file (and the line) when it cannot be read."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, "", "a readable YAML file", exc.strerror) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(file, "", f"valid YAML ({problem} at {where})") from None


def load_config(path: str | Path) -> Config:
    return parse_config(read_yaml(path), str(path))
