"""The bottom leaf for every YAML the project reads (service config, dialplans, profiles, the model
manifest): `read_yaml`, and `Node`, a mapping being read that names the file and key path in every
error and refuses keys nobody read. Imports nothing of the project."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


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

    def keys(self) -> list[str]:
        return [str(k) for k in self._data]

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
