"""Writing files that hold secrets or personal data: readable by their owner (and group) only, from
the moment they exist. A bottom leaf: imports nothing of the project."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, mode: int = 0o600, *, durable: bool = False,
                  make_dir: bool = True) -> None:
    """Replace `path` atomically with `text`, the new file created with `mode` (never readable by
    others, not even for an instant between its creation and a chmod). `durable`: on disk before it
    takes the name (a spool another program picks up); `make_dir`: create the folder if missing (not
    for a folder another program owns). A failed write leaves no temporary file behind."""
    if make_dir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover keeps its mode: O_CREAT would not set ours
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the process's umask may have taken bits off `mode`; never added any
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
