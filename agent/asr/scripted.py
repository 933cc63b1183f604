"""`ScriptedTranscriber`: a stand-in recogniser that returns known text, for tests and the demo.

No French speech model can be installed on machines without internet; the live-call tests and
`make demo` then give the recogniser the caller's known words: the k-th turn of a call yields
the k-th text (a turn cut at one of the text's marked pauses "|" yields what was said before it,
and the next utterance the rest). Everything around it (VAD, the dialogue, TTS, Asterisk) is real. It is never used by
`standardiste run` unless `--scripted-asr FILE` is given, and says so in the log.

FILE (YAML or JSON)::

    utterances: ["Bonjour, j'ai une fuite ...", "Marie Dubois", ...]
    calls: [[...], [...]]   # instead of utterances: the n-th call gets the n-th list (the demo's two calls)
    fail_at: 3        # optional fault knob: the 3rd utterance raises AsrError
    fail_with: crash  # with fail_at: raise a RuntimeError instead (an engine bug, not a reported failure)
    delay_ms: 0       # optional fault knob: each final result comes this much later
    frame_delay_ms: 0 # optional fault knob: each 20 ms frame takes this long (above 20: falls behind)
    voiced_ms: {"Jean | Martin.": [260, 400]}   # optional: each stretch's voiced duration as said (CHAR_MS)
    timed_with_vosk: true   # optional (`make bench`): the audio also goes through the real Vosk
                            # stand-in model, and each text is returned once Vosk has finished with
                            # the same utterance, so the recogniser's cost is counted, never zero
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.asr.base import AsrError, AsrSession, Transcriber, Transcript
from agent.audio.frames import FRAME_MS, AudioFrame
from agent.audio.vad import DEFAULT_MIN_RMS
from agent.yamlnode import Node, read_yaml

PAUSE: Final = "|"
"""In a caller's text, where they pause mid-sentence ("zéro six | douze | ..."): the test phones
leave a silence there (devtools/speech.py PAUSE_MS), and the recogniser never prints it."""
CHAR_MS: Final = 35
"""The scripted recogniser shows its text as partial results in step with the caller's audio, as a
streaming recogniser does: within a stretch of speech between two marked pauses, whole words only
and never past the stretch, one character per 35 ms of voiced audio (the test phones' espeak-ng
French voice: 26-75 ms a character, median 44) unless the script gives each stretch's voiced
duration (`voiced_ms`, as the phones say it): then its characters are spread over that duration,
and its last word shows once HEARD of it has been heard. A stretch is complete once a marked pause
is heard (MARKED_PAUSE_MS of silence). The final result is the whole text."""
HEARD: Final = 0.9
"""Of a stretch's voiced duration heard at the receptionist, the share after which all its words
show: a frame or two at each edge of a word can fall under the VAD's level on the line."""
MARKED_PAUSE_MS: Final = 400
"""Silence taken as a marked pause (the phones' are 500 ms; a comma's is shorter)."""


def said(text: str) -> str:
    """What a caller's text says, its pause marks taken out (what a recogniser prints)."""
    return " ".join(text.replace(PAUSE, " ").split())


def revealed(text: str, chars: int) -> str:
    """The words of `text` that fit in its first `chars` characters."""
    shown = []
    for word in text.split():
        chars -= len(word) + 1
        if chars < -1:
            break
        shown.append(word)
    return " ".join(shown)


@dataclass
class ScriptedTranscriber:
    utterances: tuple[str, ...]
    fail_at: int | None = None
    """1-based utterance whose result raises AsrError (fault knob)."""
    delay_s: float = 0.0
    """Added before each final result (fault knob: a slow recogniser)."""
    frame_delay_s: float = 0.0
    """Taken by each frame fed (fault knob: a recogniser slower than the caller, as on a loaded box)."""
    name: str = "scripted (known text per utterance, not speech recognition)"
    language: str = "fr"
    calls: tuple[tuple[str, ...], ...] = ()
    """When set, the n-th call's utterances (the last list for any call after)."""
    sessions: int = 0
    timed_with: Transcriber | None = None
    """A real recogniser fed the same audio in the same process; its result is waited for, then dropped."""
    crash: bool = False
    """With fail_at: raise a RuntimeError, as an engine with a bug would (fault knob)."""
    voiced_ms: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """For a text, the voiced duration of each of its stretches as the caller says it, ms."""

    def session(self, rate: int, phrases: list[str] | None = None) -> ScriptedSession:
        self.sessions += 1
        texts = self.calls[min(self.sessions, len(self.calls)) - 1] if self.calls else self.utterances
        return ScriptedSession(self, texts, self.timed_with.session(rate) if self.timed_with else None)

    @classmethod
    def load(cls, path: Path, timer: Callable[[], Transcriber] | None = None) -> ScriptedTranscriber:
        """The script at `path`; `timer` makes the real recogniser its `timed_with_vosk` knob asks for
        (given by the assembly: this module imports no engine)."""
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
        frame_delay = node.integer("frame_delay_ms", 0, lo=0, hi=1000)
        timed = node.flag("timed_with_vosk", False)
        crash = node.choice("fail_with", "error", ("error", "crash")) == "crash"
        voiced = node.raw("voiced_ms", {})
        if not isinstance(voiced, dict) or not all(isinstance(k, str) and isinstance(v, list) and all(
                isinstance(ms, int) and ms >= 0 for ms in v) for k, v in voiced.items()):
            raise node.error("voiced_ms", "for a text, the voiced ms of each of its stretches", voiced)
        node.close()
        made = cls(tuple(raw), fail_at, delay / 1000, frame_delay / 1000, crash=crash,
                   calls=tuple(tuple(c) for c in calls or ()), voiced_ms={k: tuple(v) for k, v in voiced.items()})
        if timed:
            if timer is None:
                raise node.error("timed_with_vosk", "false here: no real recogniser to time the script with", True)
            made.timed_with = timer()
            made.name = f"{made.name}, timed with the real {made.timed_with.name} on the same audio"
        return made


class ScriptedSession:
    """One call's recogniser. The k-th text is what the caller says in their k-th turn; when a turn
    is ended at one of its marked pauses (an early end of turn, or a VAD that takes the pause for the
    end), the utterance's result is the stretches said so far, and the rest of the text is the next
    utterance's: the words follow the audio wherever the utterances are cut, as a real recogniser's
    would."""

    def __init__(self, engine: ScriptedTranscriber, texts: Sequence[str], timed: AsrSession | None = None) -> None:
        self.engine = engine
        self.texts = texts
        self.count = 0
        """Utterances finished (the fault knob counts these)."""
        self.entry = 0
        """The text the caller is saying."""
        self.offset = 0
        """Its stretches already heard in earlier utterances (ended at a marked pause)."""
        self.frames = 0
        self.timed = timed
        self._restart()

    def _restart(self) -> None:
        self._stretch = 0
        """Marked pauses heard in the utterance so far: the stretches of its text already said."""
        self._voiced_ms = 0
        """Voiced audio in the current stretch, ms."""
        self._silent_ms = 0
        self._partial = ""

    def _text(self) -> str:
        """What the caller is saying (with its pause marks)."""
        return self.texts[self.entry] if self.entry < len(self.texts) else ""

    def _stretches(self) -> list[str]:
        """The stretches of the current text not yet heard in an earlier utterance."""
        return [s.strip() for s in self._text().split(PAUSE)][self.offset:]

    async def feed(self, frame: AudioFrame) -> Transcript | None:
        self.frames += 1
        if self.engine.frame_delay_s:
            await asyncio.sleep(self.engine.frame_delay_s)
        if self.timed is not None:
            await self.timed.feed(frame)
        if frame.rms() >= DEFAULT_MIN_RMS:
            if self._silent_ms >= MARKED_PAUSE_MS and self._voiced_ms:
                self._stretch, self._voiced_ms = self._stretch + 1, 0
            self._silent_ms = 0
            self._voiced_ms += FRAME_MS
        else:
            self._silent_ms += FRAME_MS
        stretches = self._stretches()
        done, current = stretches[:self._stretch], stretches[self._stretch] if self._stretch < len(stretches) else ""
        shown = " ".join([*done, revealed(current, self._chars(current))]).strip()
        if shown == self._partial:
            return None
        self._partial = shown
        return Transcript(said(shown), final=False)

    def _chars(self, current: str) -> int:
        """The characters of the current stretch its voiced audio so far has had time to say."""
        durations = self.engine.voiced_ms.get(self._text(), ())
        k = self.offset + self._stretch
        if k < len(durations) and durations[k] and current:
            return int(self._voiced_ms / (durations[k] * HEARD) * len(current))
        return self._voiced_ms // CHAR_MS

    async def discard(self) -> None:
        self._restart()
        if self.timed is not None:
            await self.timed.discard()

    def close(self) -> None:
        if self.timed is not None:
            self.timed.close()

    async def finish(self) -> Transcript:
        stretches = self._stretches()
        heard = self._stretch + (1 if self._voiced_ms else 0)
        self._restart()
        self.count += 1
        if self.timed is not None:
            await self.timed.finish()
        if self.engine.delay_s:
            await asyncio.sleep(self.engine.delay_s)
        if self.engine.fail_at is not None and self.count >= self.engine.fail_at:
            if self.engine.crash:
                raise RuntimeError(f"scripted crash at utterance {self.count} (fault knob)")
            raise AsrError(f"scripted failure at utterance {self.count} (fault knob)")
        if 0 < heard < len(stretches):
            self.offset += heard  # ended at a marked pause: the rest is said in the next utterance
            return Transcript(said(" ".join(stretches[:heard])), final=True, confidence=1.0)
        self.entry, self.offset = self.entry + 1, 0
        return Transcript(said(" ".join(stretches)), final=True, confidence=1.0)
