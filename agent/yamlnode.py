"""The bottom leaf for every YAML the project reads (service config, dialplans, profiles, the model
manifest): `read_yaml`, and `Node`, a mapping being read that names the file and key path in every
error and refuses keys nobody read. Imports nothing of the project."""

from __future__ import annotations

import logging
import os
import reprlib
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

log = logging.getLogger(__name__)

MAX_YAML_BYTES: Final = 1 << 20
"""A config, dialplan or manifest file is a few kB; anything over 1 MiB is refused unread."""
MAX_DEPTH: Final = 32
"""Deepest nesting of mappings and lists accepted (the real files nest 5 deep)."""
MAX_SECRET_BYTES: Final = 4096
"""A secrets file holds one password or key; anything bigger is not one."""
MAX_TEXT_CHARS: Final = 2000
"""Longest string value a `Node.text` accepts unless told otherwise (a spoken sentence is ~200)."""
_SHOW: Final = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 2, 50, 50, 50
_SHOW.maxdict = _SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxset = 4
"""How a wrong value is shown in an error: cut while it is formatted, never formatted whole first."""


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
    text = _SHOW.repr(value)
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

    def text(self, key: str, default: str | None = None, *, required: bool = False,
             max_chars: int = MAX_TEXT_CHARS) -> str:
        value = self.raw(key)
        if value is None:
            if required or default is None:
                raise self.error(key, "a string (required)")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "a non-empty string", value)
        if len(value) > max_chars:
            raise self.error(key, f"at most {max_chars} characters", f"{len(value)} characters")
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

    def secret(self, what: str, key: str = "secret") -> str:
        """A secret from `<key>_file` or `<key>_env`, never from the YAML ("" when neither is set). A
        secrets file readable by other local users is used, with a warning to chmod it 600."""
        if self.has(key):
            raise self.error(key, f"no {what} in the YAML: use {key}_file or {key}_env")
        file_name = self.opt_str(f"{key}_file")
        if file_name:
            try:
                value = read_small_file(file_name, MAX_SECRET_BYTES, f"a file holding the {what}").strip()
            except OSError as exc:
                raise self.error(f"{key}_file", f"a readable file holding the {what}",
                                 f"{file_name} ({exc.strerror})") from None
            except ValueError as exc:
                raise self.error(f"{key}_file", str(exc), file_name) from None
            if not value:
                raise self.error(f"{key}_file", f"a file holding a non-empty {what}", file_name)
            mode = Path(file_name).stat().st_mode & 0o777
            if mode & 0o077:
                log.warning("%s: %s.%s_file %s is readable by other users (mode %03o): chmod 600 it",
                            self.file, self.path, key, file_name, mode)
            return value
        env_name = self.opt_str(f"{key}_env")
        if env_name:
            value = os.environ.get(env_name, "")
            if not value:
                raise self.error(f"{key}_env", f"the environment variable {env_name} set to the {what}")
            return value
        return ""

    def close(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored."""
        for key in self._data:
            if key not in self._seen:
                raise ConfigError(self.file, self._key(str(key)), "no such key (unknown or misspelt)")


def read_small_file(path: str | Path, limit: int, what: str) -> str:
    """A small regular UTF-8 text file's content. Raises ValueError saying what is wrong: not a
    regular file (/dev/zero, a fifo), over `limit` bytes (read no further), binary, not UTF-8."""
    with open(path, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("a regular file (this is a device, fifo or directory)")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{what} of at most {limit} bytes (this one is larger)")
    if b"\0" in data:
        raise ValueError(f"{what} as text (this one holds binary data)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValueError(f"{what} in UTF-8 (byte 0x{data[exc.start]:02x} on line {line} is not UTF-8: "
                         "save the file as UTF-8)") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases (the "billion laughs": a few lines that expand to
    gigabytes) and nesting deeper than MAX_DEPTH (a RecursionError otherwise)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted; write the value out",
                                              mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """A key written twice is refused (PyYAML keeps the last one silently: a second `transfer:`
        block would reset the first's fields)."""
        seen: dict[object, Any] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: PyYAML's own error follows
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' written twice (first on line {first.line + 1}): keep one",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a ConfigError naming the file (and the line) when it cannot be read:
    missing, not a regular file, over MAX_YAML_BYTES, binary, not UTF-8, not YAML, aliases, too deep."""
    file = str(path)
    try:
        text = read_small_file(path, MAX_YAML_BYTES, "a YAML file")
    except OSError as exc:
        raise ConfigError(file, "", "a readable YAML file", exc.strerror) from None
    except ValueError as exc:
        raise ConfigError(file, "", str(exc)) from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(file, "", f"valid YAML ({problem} at {where})") from None
    except RecursionError:  # flow collections nest in the parser itself: [[[[...
        raise ConfigError(file, "", f"valid YAML (nesting deeper than {MAX_DEPTH} levels)") from None
