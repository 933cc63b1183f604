"""What `standardiste doctor` asks of the store file: can the service write it, is it whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def probe_write(path: Path) -> None:
    """Take the write lock and roll back (nothing changes); raises sqlite3.DatabaseError if the file
    or its folder cannot be written, or the file is not a database."""
    conn = sqlite3.connect(path, timeout=2)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS doctor_probe (x)")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def integrity(path: Path, most: int = 5) -> list[str]:
    """SQLite's quick_check, read-only: ["ok"], or up to `most` problems found."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            return [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({int(most)})")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
