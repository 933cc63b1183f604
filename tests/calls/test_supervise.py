"""Issue 13, faults of the processes: `make run` (`standardiste dev`) supervises the controller with
the same notify/watchdog protocol systemd uses on a box, and restarts a dead Asterisk. A hung
controller (SIGSTOP) and a killed Asterisk (kill -9) each leave the next caller answered."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.devtools.asterisk import SOFTPHONE_USER
from agent.supervise import WATCHDOG_S
from tests.conftest import REPO

EXE = str(REPO / ".venv/bin/standardiste")
RING_LIMIT_S = 12.0
"""The longest a caller may ring while a hung controller is found and replaced: the watchdog
(WATCHDOG_S), the kill, a new controller's start (engines, phrases from the cache) and its resync,
which answers the call that was waiting."""
ASTERISK_BACK_LIMIT_S = 20.0
"""From kill -9 of Asterisk to the next call answered: Asterisk's own start (~3-5 s here) and the
controller's reconnection (backoff capped at 2 s)."""


def _is_controller(argv: list[bytes]) -> bool:
    """`.venv/bin/standardiste run --config ...` (through its python interpreter)."""
    return any(a.endswith(b"/standardiste") for a in argv) and b"run" in argv and b"--config" in argv


class Dev:
    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "dev.log"
        self.run_dir = tmp_path / "run"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([EXE, "dev", "--run-dir", str(self.run_dir), "--sip-port", "0"], stdout=out,
                                         stderr=subprocess.STDOUT, cwd=REPO)
        self.wait_for("ARI events connected (connection 1)")
        m = re.search(r"SIP server : 127\.0\.0\.1:(\d+)", self.text())
        assert m, self.text()
        self.sip_port = int(m.group(1))

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, timeout: float = 90.0, count: int = 1) -> float:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.text().count(what) >= count:
                return time.monotonic()
            assert self.proc.poll() is None, self.text()
            time.sleep(0.05)
        raise AssertionError(f"{what!r} (x{count}) not seen:\n{self.text()[-4000:]}")

    def controller_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        pids = [int(c) for c in children if _is_controller(Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0"))]
        assert len(pids) == 1, children
        return pids[0]

    def asterisk_pid(self) -> int:
        return int((self.run_dir / "run" / "asterisk.pid").read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(40)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    made = Dev(tmp_path)
    try:
        yield made
    finally:
        made.stop()
        for pid_file in tmp_path.glob("**/run/asterisk.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _answered_after(phones: Any, dev: Dev, tmp_path: Path, name: str, limit: float) -> float:
    """Place a call now; the seconds until it is answered (fails past `limit`)."""
    password = (dev.run_dir / "softphone-password").read_text().strip()
    acc = phones.account(f"127.0.0.1:{dev.sip_port}", SOFTPHONE_USER, password)
    try:
        started = time.monotonic()
        call = phones.call(acc, f"sip:100@127.0.0.1:{dev.sip_port}", tmp_path / f"{name}.wav")
        assert phones.wait_until(lambda: call.confirmed or call.ended, limit + 2), f"{name}: not answered"
        took = time.monotonic() - started
        assert call.confirmed, f"{name}: the call ended unanswered"
        return took
    finally:
        phones.hang_up_all()
        phones.remove_account(acc)


def test_a_hung_controller_is_replaced_and_the_ringing_caller_answered(dev: Dev, phones: Any,
                                                                      tmp_path: Path) -> None:
    hung = dev.controller_pid()
    os.kill(hung, signal.SIGSTOP)
    took = _answered_after(phones, dev, tmp_path, "while-hung", RING_LIMIT_S)
    print(f"\nrang {took:.1f} s while the controller was hung (watchdog {WATCHDOG_S:.0f} s, "
          f"limit {RING_LIMIT_S:.0f} s)")
    assert took <= RING_LIMIT_S
    assert "has not answered for" in dev.text() and not Path(f"/proc/{hung}").exists()
    assert dev.controller_pid() != hung
    assert _answered_after(phones, dev, tmp_path, "after", 3.0) <= 3.0  # and the next one at once


def test_a_killed_asterisk_is_started_again_and_the_next_caller_answered(dev: Dev, phones: Any,
                                                                        tmp_path: Path) -> None:
    old = dev.asterisk_pid()
    subprocess.run(["kill", "-9", str(old)], check=True)
    killed = time.monotonic()
    dev.wait_for("Asterisk exited", timeout=10)
    dev.wait_for("ARI events connected", count=2, timeout=ASTERISK_BACK_LIMIT_S)
    reconnected = time.monotonic() - killed
    took = _answered_after(phones, dev, tmp_path, "after-restart", 5.0)
    print(f"\nAsterisk killed: controller reconnected after {reconnected:.1f} s, next call answered in {took:.1f} s")
    assert dev.asterisk_pid() != old and reconnected + took <= ASTERISK_BACK_LIMIT_S
