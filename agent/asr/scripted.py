"""`ScriptedTranscriber`: a stand-in recogniser that returns known text, for tests and the demo.

No French speech model can be installed on machines without internet; the live-call tests and
`make demo` then give the recogniser the caller's known words: the k-th utterance of a call yields
the k-th text. Everything around it (VAD, the dialogue, TTS, Asterisk) is real. It is never used by
`standardiste run` unless `--scripted-asr FILE` is given, and says so in the log.

FILE (YAML or JSON)::

    utterances: ["Bonjour, j'ai une fuite ...", "Marie Dubois", ...]
    calls: [[...], [...]]   # instead of utterances: the n-th call gets the n-th list (the demo's two calls)
    fail_at: 3        # optional fault knob: the 3rd utterance raises AsrError
    delay_ms: 0       # optional fault knob: each final result comes this much later
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.asr.base import AsrError, Transcript
from agent.audio.frames import AudioFrame
from agent.yamlnode import Node, read_yaml


@dataclass
class ScriptedTranscriber:
    utterances: tuple[str, ...]
    fail_at: int | None = None
    """1-based utterance whose result raises AsrError (fault knob)."""
    delay_s: float = 0.0
    """Added before each final result (fault knob: a slow recogniser)."""
    name: str = "scripted (known text per utterance, not speech recognition)"
    language: str = "fr"
    calls: tuple[tuple[str, ...], ...] = ()
    """When set, the n-th call's utterances (the last list for any call after)."""
    sessions: int = 0

    def session(self, rate: int, phrases: list[str] | None = None) -> ScriptedSession:
        self.sessions += 1
        texts = self.calls[min(self.sessions, len(self.calls)) - 1] if self.calls else self.utterances
        return ScriptedSession(self, texts)

    @classmethod
    def load(cls, path: Path) -> ScriptedTranscriber:
        node = Node(str(path), "", read_yaml(path))
        calls = node.raw("calls")
        if calls is not None and (not isinstance(calls, list) or not calls or not all(
                isinstance(c, list) and all(isinstance(u, str) for u in c) for c in calls)):
            raise node.error("calls", "a list of calls, each a list of what the caller says", calls)
        raw = node.raw("utterances", [] if calls else None)
        if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw):
            raise node.error("utterances", "a list of what the caller says, one string per utterance", raw)
        fail_at = node.raw("fail_at")
        if fail_at is not None and (isinstance(fail_at, bool) or not isinstance(fail_at, int) or fail_at < 1):
            raise node.error("fail_at", "a utterance number from 1", fail_at)
        delay = node.integer("delay_ms", 0, lo=0, hi=60000)
        node.close()
        return cls(tuple(raw), fail_at, delay / 1000, calls=tuple(tuple(c) for c in calls or ()))


class ScriptedSession:
    def __init__(self, engine: ScriptedTranscriber, texts: Sequence[str]) -> None:
        self.engine = engine
        self.texts = texts
        self.count = 0
        self.frames = 0

    async def feed(self, frame: AudioFrame) -> Transcript | None:
        self.frames += 1
        return None

    async def discard(self) -> None:
        return None

    async def finish(self) -> Transcript:
        self.count += 1
        if self.engine.delay_s:
            await asyncio.sleep(self.engine.delay_s)
        if self.engine.fail_at is not None and self.count >= self.engine.fail_at:
            raise AsrError(f"scripted failure at utterance {self.count} (fault knob)")
        texts = self.texts
        text = texts[self.count - 1] if self.count <= len(texts) else ""
        return Transcript(text, final=True, confidence=1.0)
