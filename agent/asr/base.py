"""Speech-to-text: one engine (model) per process, one session per call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.audio.frames import AudioFrame
from agent.errors import StageError


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


class Transcriber(Protocol):
    name: str
    """Which model is running, for logs and health (e.g. "vosk:vosk-model-small-fr-0.22")."""
    language: str

    def session(self, rate: int, phrases: list[str] | None = None) -> AsrSession:
        """A recogniser for one call's audio at `rate` Hz, optionally limited to `phrases`."""
