"""Speech-to-text: one engine (model) per process, one session per call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from agent.audio.frames import AudioFrame
from agent.errors import StageError

ASR_NICE: Final = 10
"""Scheduling priority of the recognition threads (Linux nice). Recognition is the heaviest work of
a call (79-84 % of the receptionist's CPU under 8 calls, measured by make bench); when the box has
more calls than cores, it waits, while the event loop that answers calls and paces every call's
RTP frames does not."""


@dataclass(frozen=True)
class AsrSettings:
    """The service config's `asr:` section: the recognition threads."""

    threads: int = 0
    """How many recognition steps run at once; 0: one per core. More threads than cores only take
    CPU time from the event loop."""
    nice: int = ASR_NICE
    """Their priority (Linux nice, 0-19); 0 runs them at the event loop's priority (what make bench
    compares the default against)."""
    keep: int = 4
    """Recognisers kept between calls at most (agent/asr/vosk_engine.py: a new one decodes 3-5 times
    slower; each kept one holds its graph cache, 50-90 MB with the packaged model); 0: a new
    recogniser for every call (make bench's "before")."""
    warm: int = 2
    """Recognisers made and run over the receptionist's own prompts at start, in the background, so
    that the first calls do not decode with a cold graph (at most `keep`); 0: none."""


class AsrError(StageError):
    """A recogniser failed. `retryable`: whether a new session may work (the model is still good)."""
    stage = "asr"


@dataclass(frozen=True)
class Transcript:
    text: str
    """What was recognised, lower case as the model writes it; empty if nothing."""
    final: bool
    confidence: float | None = None
    """Mean word confidence 0-1 when the engine gives one."""


class AsrSession(Protocol):
    async def feed(self, frame: AudioFrame) -> Transcript | None:
        """Feed one frame; returns a partial (or, at an endpoint, final) transcript when it changed."""

    async def finish(self) -> Transcript:
        """The final transcript of everything fed since the last final one."""

    async def discard(self) -> None:
        """Forget what was fed since the last final one (a cough, a click: no utterance after all)."""

    def close(self) -> None:
        """The call is over: nothing more is fed (an engine may keep its recogniser for a next call)."""


class Transcriber(Protocol):
    name: str
    """Which model is running, for logs and health (e.g. "vosk:vosk-model-small-fr-0.22")."""
    language: str

    def session(self, rate: int, phrases: list[str] | None = None) -> AsrSession:
        """A recogniser for one call's audio at `rate` Hz, optionally limited to `phrases`."""
