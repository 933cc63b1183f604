"""Fault injection into the real engine adapters, for the tests only: `STANDARDISTE_FAULTS` makes the
Vosk, Piper or llama.cpp adapter crash or hang at its n-th use, in the engine's own worker thread,
as a real failure would. Imported, it installs itself in agent/engine_hooks.py; `standardiste run`
imports it only when the variable is set (never on a box)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from agent import engine_hooks

log = logging.getLogger(__name__)

ENV: Final = "STANDARDISTE_FAULTS"
"""e.g. "asr=hang@2,tts=crash,llm=hang": stage=fault[@n] (n: the n-th use; every use without it)."""
STAGES: Final = ("asr", "tts", "llm")
HANG_S: Final = 60.0
"""How long an injected hang blocks the engine's thread (longer than any call's patience)."""


class Fault(StrEnum):
    CRASH = "crash"
    HANG = "hang"


class InjectedFault(RuntimeError):
    """What an injected crash raises (the adapters see it as any other engine exception)."""


@dataclass(frozen=True)
class Injection:
    stage: str
    fault: Fault
    at: int
    """The n-th use of the stage that fails (1-based); 0: every use."""


def parse(spec: str) -> dict[str, Injection]:
    """Raises ValueError naming what is wrong."""
    out: dict[str, Injection] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        stage, _, rest = part.partition("=")
        kind, _, at = rest.partition("@")
        if stage not in STAGES or kind not in tuple(Fault) or (at and not at.isdigit()):
            raise ValueError(f"{ENV}: {part!r}: expected stage=crash|hang[@n] with stage one of {', '.join(STAGES)}")
        out[stage] = Injection(stage, Fault(kind), int(at or 0))
    return out


class Faults:
    def __init__(self, spec: str = "") -> None:
        self._lock = threading.Lock()
        self.configure(spec)

    def configure(self, spec: str, hang_s: float = HANG_S) -> None:
        """Replace the injections (tests running the controller in their own process)."""
        self.injections = parse(spec)
        self.hang_s = hang_s
        self._uses = dict.fromkeys(STAGES, 0)

    @classmethod
    def from_env(cls) -> Faults:
        return cls(os.environ.get(ENV, ""))

    def describe(self) -> str:
        return ", ".join(f"{i.stage} {i.fault}" + (f" at use {i.at}" if i.at else "") for i in self.injections.values())

    def hit(self, stage: str) -> None:
        """Called by an adapter at each use of its engine, in the engine's thread."""
        injection = self.injections.get(stage)
        if injection is None:
            return
        with self._lock:
            self._uses[stage] += 1
            use = self._uses[stage]
        if injection.at and use != injection.at:
            return
        log.warning("injected fault: %s %s (use %d)", stage, injection.fault, use)
        if injection.fault is Fault.CRASH:
            raise InjectedFault(f"injected {stage} crash")
        time.sleep(self.hang_s)


FAULTS: Final = Faults.from_env()
engine_hooks.install(FAULTS.hit)


def announce() -> None:
    """Say it in the log when injections are on (the controller a test starts)."""
    if FAULTS.injections:
        log.warning("fault injection is on (%s: %s): tests only, never on a box", ENV, FAULTS.describe())
