"""Writing files that hold secrets or personal data: readable by their owner (and group) only, from
the moment they exist. A bottom leaf: imports nothing of the project."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` atomically with `text`, the new file created with `mode` (never readable by
    others, not even for an instant between its creation and a chmod)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover keeps its mode: O_CREAT would not set ours
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)  # the process's umask may have taken bits off `mode`; never added any
    os.replace(tmp, path)
