"""The development supervisor (`make run`): what systemd does on a box, for the dev Asterisk and the
controller. The controller runs as a child process with a notify socket (agent/notify.py); one
that exits is started again, one whose event loop stops pinging for `watchdog_s` is killed and
started again, and an Asterisk that dies (kill -9, a crash) is started again, the controller
reconnecting by itself. Each event is one log line."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("standardiste.supervise")

WATCHDOG_S: Final = 3.0
"""How long the controller's loop may stay silent before it is killed and restarted (systemd:
WatchdogSec in scripts/standardiste.service). Pings come every half of it."""
RESTART_DELAY_S: Final = 0.5
"""Between a controller's end and its next start (systemd: RestartSec)."""
CHECK_EVERY_S: Final = 0.1
START_TIMEOUT_S: Final = 180.0
"""A controller that has not pinged this long after its start (models loading) is killed (systemd:
TimeoutStartSec)."""


def _die_with_parent() -> None:
    """In the child: SIGTERM when the supervisor dies (kill -9 of `make run` must not leave an
    orphan controller retrying an Asterisk the next run replaces)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Restarts:
    controller_exited: int = 0
    controller_hung: int = 0
    asterisk: int = 0
    events: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(self, ast: Any, config: Path, *, watchdog_s: float = WATCHDOG_S,
                 extra_args: list[str] | None = None) -> None:
        self.ast = ast
        self.config = config
        self.watchdog_s = watchdog_s
        self.extra_args = extra_args or []
        self.restarts = Restarts()
        self.child: subprocess.Popen[bytes] | None = None
        self._sock_path = Path(ast.run_dir) / "run" / "notify.sock"
        self._sock: socket.socket | None = None
        self._last_ping = 0.0
        self._ready = False

    # --- the controller ------------------------------------------------------------------------
    def _start_controller(self) -> None:
        env = dict(os.environ, NOTIFY_SOCKET=str(self._sock_path), WATCHDOG_USEC=str(int(self.watchdog_s * 1e6)))
        env.pop("WATCHDOG_PID", None)
        exe = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "standardiste"
        self.child = subprocess.Popen([str(exe), "run", "--config", str(self.config), *self.extra_args], env=env,
                                      preexec_fn=_die_with_parent)
        self._ready = False
        self._last_ping = time.monotonic()

    def _stop_controller(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        self.child.send_signal(sig)
        try:
            self.child.wait(timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()

    def _read_notifications(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(4096).decode(errors="replace")
            except BlockingIOError:
                return
            for line in data.splitlines():
                if line in ("WATCHDOG=1", "READY=1"):  # the watchdog holds from the loop's first ping
                    self._ready = True
                    self._last_ping = time.monotonic()

    def _event(self, text: str) -> None:
        log.warning("supervisor: %s", text)
        self.restarts.events.append(text)

    # --- the loop -----------------------------------------------------------------------------
    def check(self) -> None:
        """One look at both processes; restart what needs it."""
        self._read_notifications()
        if self.ast.proc is not None and self.ast.proc.poll() is not None:
            self._event(f"Asterisk exited ({self.ast.proc.returncode}); starting it again")
            self.restarts.asterisk += 1
            self.ast.restart()
        assert self.child is not None
        code = self.child.poll()
        if code is not None:
            self._event(f"the controller exited ({code}); starting it again")
            self.restarts.controller_exited += 1
            time.sleep(RESTART_DELAY_S)
            self._start_controller()
        elif not self._ready and time.monotonic() - self._last_ping > START_TIMEOUT_S:
            self._replace_hung(f"the controller did not start within {START_TIMEOUT_S:.0f} s")
        elif self._ready and time.monotonic() - self._last_ping > self.watchdog_s:
            self._replace_hung(f"the controller's event loop has not answered for {self.watchdog_s:.0f} s")

    def _replace_hung(self, why: str) -> None:
        assert self.child is not None
        self._event(f"{why}; killing and starting it again")
        self.restarts.controller_hung += 1
        self.child.kill()
        self.child.wait()
        self._start_controller()

    def __enter__(self) -> Supervisor:
        self._sock_path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(str(self._sock_path))
        os.chmod(self._sock_path, 0o600)
        self._sock.setblocking(False)
        self._start_controller()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.child is not None:
            self._stop_controller()
        if self._sock is not None:
            self._sock.close()
            self._sock_path.unlink(missing_ok=True)

    def run(self, should_stop: Any) -> None:
        """Supervise until `should_stop()` is true."""
        while not should_stop():
            self.check()
            time.sleep(CHECK_EVERY_S)
