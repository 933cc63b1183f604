"""The end of the caller's turn, decided in a short pause instead of waited for.

When the caller has been silent `vad.pause_ms` (200 ms), the utterance is ended at once if
- the words recognised so far answer the question pending (dialogue/complete.py: a bare yes or
  no, a name, a complete phone number, an address with its town, a slot's choice), or
- for a question the words cannot check (the problem, a message, the greeting), the sound of the
  utterance says the caller is done (Smart Turn, audio/turn_model.py) and the words so far do not
  stop on a word that leaves the sentence open ("et", "c'est au");
otherwise the hangover (700 ms) ends it as before, or the caller goes on. A number dictated in
pairs, an address without its town, a name being spelled are never cut by the sound alone. Each decision is counted
by what took it, for `make bench` and the log at the end of the call.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from agent.asr.base import Transcript
from agent.audio.turn_model import FINISHED, TurnDecider
from agent.audio.vad import Paused
from agent.dialogue.complete import answers, checkable, hanging
from agent.dialogue.context import Context
from agent.dialogue.heard import Expect

log = logging.getLogger(__name__)


@dataclass
class TurnEnd:
    """One per call: the words heard in the utterance in progress, and the decision at each pause."""

    conv: Context
    end: Callable[[Paused], bool]
    """Ends the paused utterance now (the media's `end_turn`); False if the caller spoke again."""
    decider: TurnDecider | None = None
    mark: Callable[[str], None] = lambda _name: None
    counts: Counter[str] = field(default_factory=Counter)
    """Decisions by outcome: "words", "sound" (ended early), "wait" (left to the hangover), "late"
    (ended early, but the caller had spoken again)."""
    cost_ms: list[float] = field(default_factory=list)
    """How long each decision took, ms."""
    join_s: float = 0.7
    """An utterance that starts within this of the end of one ended early is its continuation (the
    hangover would have made them one): it is judged with it, against the same question, s."""
    _segments: list[str] = field(default_factory=list)
    _partial: str = ""
    _early: tuple[float, Expect, str] | None = None
    """The last utterance ended early: its end (monotonic s), the question it answered, its words."""

    def heard(self, t: Transcript | None) -> None:
        """What the recogniser has said of the utterance so far (a partial, or a segment it closed)."""
        if t is None:
            return
        if t.final:
            if t.text:
                self._segments.append(t.text)
            self._partial = ""
        else:
            self._partial = t.text

    def reset(self) -> None:
        """The utterance ended (or was discarded): the next one starts with no words."""
        self._segments, self._partial = [], ""

    @property
    def text(self) -> str:
        return " ".join([*self._segments, self._partial]).strip()

    async def decide(self, paused: Paused) -> None:
        """Decide in this pause; whatever goes wrong leaves the end to the hangover (one log line)."""
        try:
            await self._decide(paused)
        except Exception:
            self.counts["error"] += 1
            if self.counts["error"] == 1:
                log.exception("end-of-turn decision failed: the end of this turn is the fixed pause")

    async def _decide(self, paused: Paused) -> None:
        started = time.monotonic()
        expect, text = self.conv.expect(), self.text
        early = self._early
        if early is not None and paused.started_at - early[0] <= self.join_s:
            expect, text = early[1], f"{early[2]} {text}"  # the rest of the last turn
        how = "words" if answers(expect, text, self.conv.now) else None
        if how is None and self.decider is not None and paused.frames and not checkable(expect) \
                and not (text and hanging(text)):
            samples = np.concatenate([f.samples for f in paused.frames])
            p = await self.decider.finished(samples, paused.frames[0].rate)
            how = "sound" if p is not None and p >= FINISHED else None
        self.cost_ms.append((time.monotonic() - started) * 1000)
        if how is None:
            self.counts["wait"] += 1
            self.mark("turn_wait")
        elif self.end(paused):
            self.counts[how] += 1
            self.mark(f"turn_end_{how}")
            self._early = (paused.at, expect, text)
        else:
            self.counts["late"] += 1
            self.mark("turn_late")
