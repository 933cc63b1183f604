"""The call store: SQLite (stdlib), WAL with synchronous=FULL, a versioned schema, one writer.

Every write goes through one writer thread, in order, each committed on its own: a field the
dialogue understood is on disk a few milliseconds later, so a crash loses at most the turn in
progress. Reads open their own connection (WAL lets them run beside the writer).
Imports nothing above it: telephony, sessions and the web read and write through these methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final, TypeVar

from agent.errors import StageError
from agent.store.dashboard import set_stage
from agent.store.rows import record_action
from agent.store.schema import LEAD_COLUMNS, MIGRATIONS, SCHEMA_VERSION, CallStage, LeadStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
BUSY_TIMEOUT_S: Final = 5.0
"""How long a reader waits for a lock (a migration, a checkpoint), seconds."""


STORAGE_ERRORS: Final = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_CORRUPT",
                          "SQLITE_NOTADB")
"""SQLite's errors that say the disk, not the write, is at fault (a full disk, a read-only mount)."""
DAMAGE_ERRORS: Final = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
"""Of those, the ones that say the file itself is damaged: a backup restores it, free space does not."""


WRITABLE_AGAIN_FREE_BYTES: Final = 4 << 20
"""A store that failed for want of space is written to again only once this much is free: on a
full disk a small write still fits in the pages SQLite already has, and the next one fails."""


def _name(fn: Callable[..., Any]) -> str:
    """Which write failed, for the log: its function (`Store.set_lead`), never its values."""
    return getattr(fn, "__qualname__", type(fn).__name__).replace(".<locals>.write", "")


def _free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return 0


class StoreError(RuntimeError):
    stage = "store"


class StoreUnwritable(StageError):
    """Raised in a call when the store cannot be written: the call goes on as a voice message."""

    stage = "store"


def storage_failure(exc: BaseException) -> str | None:
    """The storage error's name if `exc` says the store cannot be written at all, else None (a bug
    in one write, a constraint: the next write may well succeed)."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith(STORAGE_ERRORS):
        return str(name)
    return type(exc).__name__ if isinstance(exc, OSError) else None


def claim(path: Path) -> int | None:
    """Make this process the store's only controller: an exclusive lock on `<store>.lock`, held until
    the store is closed or the process ends (a kill -9 too: the kernel drops it). A second controller on the
    same store would close the first one's live calls as interrupted at its start (session/recovery):
    it stops here instead, with one clear line. Returns the lock's fd; None if the lock file cannot
    be made (a read-only disk: the store reports that itself)."""
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.warning("store lock %s not made (%s): another controller on this store would not be noticed",
                    lock, exc.strerror)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 16, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise StoreError(f"another controller (pid {holder}) runs on the store {path}: one controller per "
                         "store (stop it, or give this one its own paths.store)") from None
    with contextlib.suppress(OSError):  # the holder's pid, for the next one's message
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise StoreError(f"no store at {path} (nothing recorded yet, or another paths.store)")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # callers' data: the service's user only (its -wal and -shm follow its mode)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION, one transaction per step; returns the version found."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StoreError(f"the store has schema version {found}, newer than this Standardiste ({SCHEMA_VERSION}): "
                         "upgrade Standardiste, or point paths.store at another file")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


class Store:
    """One per process. `submit` queues a write; the `async` helpers await it off the event loop."""

    def __init__(self, path: Path, *, sole: bool = False) -> None:
        """`sole`: the running service's store, claimed for this process alone (`claim`)."""
        self.path = path
        self._claim = claim(path) if sole else None
        self.failing: str | None = None
        """While writes fail for the disk's sake (full, read-only): the error's name. Calls check it
        and take voice messages rather than go on talking with nothing saved."""
        self.write_errors = 0
        self._jobs: queue.Queue[tuple[Callable[[sqlite3.Connection], Any], Future[Any]] | None] = queue.Queue()
        self.broken = False
        """The file is not a whole SQLite database (damaged, truncated, overwritten): every write fails
        and calls are voice messages until it is restored from a backup."""
        if path.is_file() and path.stat().st_size == 0:
            log.error("STORE EMPTY: %s is 0 bytes: a new, empty store is started here. If it held calls, "
                      "stop the service and restore the last daily backup (%s) in its place", path,
                      path.parent / "backups")
        try:
            conn = connect(path)
            try:
                migrate(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            if storage_failure(exc) not in DAMAGE_ERRORS:
                self._release()
                raise
            self._damaged(exc)
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()

    # --- the writer ----------------------------------------------------------------------------
    def _writer(self) -> None:
        try:
            conn = connect(self.path)
        except sqlite3.DatabaseError as exc:  # a damaged file (said at open): every write fails with it
            self._refuse_all(exc)
            return
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                fn, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                changes = conn.total_changes
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException as exc:  # handed to whoever waits on the future
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    self._failed(exc, fn)
                    future.set_exception(exc)
                    continue
                if (self.failing is not None and not self.broken
                        and conn.total_changes > changes  # a write that wrote, not a barrier
                        and _free_bytes(self.path) >= WRITABLE_AGAIN_FREE_BYTES):
                    log.warning("store %s: writable again (after %d failed write(s))", self.path, self.write_errors)
                    self.failing = None
                future.set_result(result)
        finally:
            conn.close()

    def _refuse_all(self, exc: BaseException) -> None:
        if not self.broken:
            self._damaged(exc)
        while (job := self._jobs.get()) is not None:
            _fn, future = job
            if future.set_running_or_notify_cancel():
                self.write_errors += 1
                future.set_exception(StoreUnwritable(f"the store is damaged ({self.failing})"))

    def _damaged(self, exc: BaseException) -> None:
        """One line, once: what is wrong, where, and how to restore (the service goes on answering)."""
        self.broken = True
        self.failing = storage_failure(exc) or "SQLITE_CORRUPT"
        log.error("STORE DAMAGED: %s is not a whole database (%s: %s): calls are taken as voice messages "
                  "(kept with their caller's number in the messages folder) until it is restored. To restore: "
                  "stop the service, move the file aside, copy the newest backup from %s in its place "
                  "(`standardiste backup` makes them daily), start the service, then run `standardiste doctor`",
                  self.path, self.failing, exc, self.path.parent / "backups")

    def _failed(self, exc: BaseException, fn: Callable[..., Any]) -> None:
        self.write_errors += 1
        kind = storage_failure(exc)
        if kind in DAMAGE_ERRORS and not self.broken:
            self._damaged(exc)
            return
        if kind is not None and self.failing is not None:
            log.debug("store write failed (%s) in %s", kind, _name(fn))  # said once already
            return
        if kind is not None and self.failing is None:
            # The error's text is SQLite's or the OS's (no value of ours is in it).
            log.error("STORE NOT WRITABLE: %s (%s: %s, in %s): calls are taken as voice messages until it is; "
                      "free some space or remount it, then see `standardiste doctor`", self.path, kind, exc,
                      _name(fn))
            self.failing = kind
        else:
            log.error("store write failed: %s in %s", kind or type(exc).__name__, _name(fn))

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write from a thread that may block (start-up, tests, the CLI)."""
        return self.submit(fn).result()

    def close(self) -> None:
        """Finish every queued write, then stop the writer."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._release()

    def _release(self) -> None:
        if self._claim is not None:
            os.close(self._claim)  # the lock goes with its last fd
            self._claim = None

    # --- writes ------------------------------------------------------------------------------------
    async def open_call(self, *, channel_id: str, did: str, caller_id: str, dialplan: str, trade: str,
                        business: str) -> int:
        """A new call and its lead (status new); returns the call's id."""
        now = time.time()

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute("INSERT INTO calls (channel_id, started_at, did, caller_id, dialplan, business) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (channel_id, now, did, caller_id, dialplan, business))
            call_id = int(cur.lastrowid or 0)
            conn.execute("INSERT INTO leads (call_id, created_at, updated_at, trade, status, caller_id) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (call_id, now, now, trade, LeadStatus.NEW.value, caller_id))
            return call_id
        return await self.run(write)

    def set_lead(self, call_id: int, **values: object) -> Future[None]:
        """Update lead columns now (queued; committed in order). Unknown columns are a bug: refused."""
        unknown = set(values) - set(LEAD_COLUMNS)
        if unknown:
            raise StoreError(f"no lead column(s) {sorted(unknown)}")
        cols = sorted(values)

        def write(conn: sqlite3.Connection) -> None:
            sets = ", ".join(f"{c} = ?" for c in cols)
            conn.execute(f"UPDATE leads SET {sets}, updated_at = ? WHERE call_id = ?",
                         [_plain(values[c]) for c in cols] + [time.time(), call_id])
        return self.submit(write)

    def add_turn(self, call_id: int, who: str, text: str, *, interrupted: bool = False,
                 at: float | None = None) -> Future[None]:
        when = time.time() if at is None else at

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO turns (call_id, at, who, text, interrupted) VALUES (?, ?, ?, ?, ?)",
                         (call_id, when, who, text, int(interrupted)))
        return self.submit(write)

    def mark_last_agent_turn_interrupted(self, call_id: int) -> Future[None]:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE turns SET interrupted = 1 WHERE id = (SELECT max(id) FROM turns "
                         "WHERE call_id = ? AND who = 'agent')", (call_id,))
        return self.submit(write)

    def set_stage(self, call_id: int, stage: CallStage) -> Future[None]:
        """Where the call in progress stands (the dashboard's En direct)."""
        return self.submit(lambda conn: set_stage(conn, call_id, stage))

    def add_action(self, call_id: int, kind: str, target: str, result: str, reason: str = "") -> Future[None]:
        now = time.time()
        return self.submit(lambda conn: record_action(conn, call_id, kind, result, reason, target, now))

    def hold_slot(self, call_id: int, start: float, end: float,
                  then: Callable[[sqlite3.Connection], None] | None = None) -> Future[None]:
        """A booked slot, held in the store (so the next caller is not offered it); `then` runs in the
        same transaction (the calendar's event is queued with the booking)."""
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO bookings (call_id, start, end, created_at) VALUES (?, ?, ?, ?)",
                         (call_id, start, end, time.time()))
            conn.execute("UPDATE leads SET booking_start = ?, booking_end = ?, updated_at = ? WHERE call_id = ?",
                         (start, end, time.time(), call_id))
            if then is not None:
                then(conn)
        return self.submit(write)

    def move_booking(self, call_id: int, start: float, end: float,
                     then: Callable[[sqlite3.Connection], None] | None = None) -> Future[None]:
        """The booking `call_id` made moves to start-end (a returning caller); `then` in the same transaction."""
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE bookings SET start = ?, end = ? WHERE call_id = ?", (start, end, call_id))
            conn.execute("UPDATE leads SET booking_start = ?, booking_end = ?, updated_at = ? WHERE call_id = ?",
                         (start, end, time.time(), call_id))
            if then is not None:
                then(conn)
        return self.submit(write)

    def cancel_booking(self, call_id: int, then: Callable[[sqlite3.Connection], None] | None = None) -> Future[None]:
        """The booking `call_id` made is cancelled: its slot is free again, its lead says so."""
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM bookings WHERE call_id = ?", (call_id,))
            conn.execute("UPDATE leads SET status = ?, updated_at = ? WHERE call_id = ?",
                         (LeadStatus.CANCELLED.value, time.time(), call_id))
            if then is not None:
                then(conn)
        return self.submit(write)

    def end_call(self, call_id: int, outcome: str, trace: list[dict[str, object]],
                 then: Callable[[sqlite3.Connection], None] | None = None) -> Future[None]:
        """The call's end and its trace (appended to: a blind transfer's return adds a second part);
        `then` runs in the same transaction (the SMS the call causes are queued with its end)."""
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE calls SET ended_at = ?, outcome = ? WHERE id = ?", (now, outcome, call_id))
            row = conn.execute("SELECT events FROM traces WHERE call_id = ?", (call_id,)).fetchone()
            events = [*json.loads(row["events"]), *trace] if row else trace
            conn.execute("INSERT OR REPLACE INTO traces (call_id, events) VALUES (?, ?)",
                         (call_id, json.dumps(events)))
            if then is not None:
                then(conn)
        return self.submit(write)

    # --- reads (any thread) ---------------------------------------------------------------------------
    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = connect(self.path, readonly=True)
        try:
            return fn(conn)
        finally:
            conn.close()

    def upcoming_booking(self, caller: str, dialplan: str, after: float) -> dict[str, Any] | None:
        """The next booking a caller made with this dialplan (by the number they called from or gave)."""
        def find(c: sqlite3.Connection) -> dict[str, Any] | None:
            row = c.execute(
                "SELECT l.call_id, l.booking_start, l.booking_end, l.name, l.address, l.problem FROM leads l "
                "JOIN calls c ON c.id = l.call_id WHERE l.status = ? AND l.booking_start > ? AND c.dialplan = ? "
                "AND (c.caller_id = ? OR l.phone = ?) ORDER BY l.booking_start LIMIT 1",
                (LeadStatus.BOOKED.value, after, dialplan, caller, caller)).fetchone()
            return dict(row) if row else None
        return self.read(find)

    def busy_slots(self, since: float) -> list[tuple[float, float]]:
        return self.read(lambda c: [(r["start"], r["end"]) for r in c.execute(
            "SELECT start, end FROM bookings WHERE end > ? ORDER BY start", (since,))])


def _plain(value: object) -> object:
    """Enums and other str subclasses as plain text for SQLite."""
    return str(value) if isinstance(value, str) else value
