"""Work the service starts beside its calls (the phrases rendered, the recognisers warmed): daemon
threads running C++ engines (Piper's onnxruntime, Kaldi). An interpreter that exits while one of
them runs aborts (SIGABRT, exit 134: `standardiste run` stopped within ~10 s of a start did, which
systemd logs as a crash). Each job checks `stopping` between two steps; the service sets it and
waits for them when it stops. A bottom leaf."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

STOP_WAIT_S: Final = 10.0
"""How long a stop waits for the jobs to reach the end of their step (a sentence, an utterance: at
most about a second each)."""


class Background:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, name: str, job: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=job, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def stop(self, wait_s: float = STOP_WAIT_S) -> bool:
        """Ask every job to stop after its step and wait for them; False if one is still running."""
        self.stopping.set()
        deadline = time.monotonic() + wait_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = [t.name for t in self._threads if t.is_alive()]
        if running:
            log.warning("background work still running at the stop: %s", ", ".join(running))
        return not running
