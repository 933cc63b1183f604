"""The live conversation's timeouts and latency budgets: each a named constant, each a setting."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

FIRST_TURN_WAIT_S: Final = 8.0
"""How long the caller may stay silent after a question before we ask again, seconds."""
NEXT_TURN_WAIT_S: Final = 3.0
"""While a voice message is being left, a pause this long means the caller has finished, seconds."""
ACK_AFTER_S: Final = 0.3
"""Dead-air budget: if no reply audio is ready this long after the end of the caller's utterance,
a short pre-rendered acknowledgement plays ("D'accord."), seconds. After the VAD's 0.7 s of silence
that ends the utterance, the caller hears something within about a second (`make bench` measures
it against the former 0.7 s in the same run)."""
DEAD_AIR_S: Final = 0.0
"""When set (seconds; 0 is off, the default): nothing plays later than this after the caller's last
word, the acknowledgement first if the reply is not ready. After a turn that waited out the 700 ms
hangover, 0.8 puts "D'accord." 100 ms after the decision instead of 300 ms. `make bench` (full,
2026-12-07 11:14 and 11:45, 4 calls, same calls): the first sound's p95 1004 -> 841 and 1043 -> 830
ms, acknowledgements 1-2 -> 4 of 15 turns; but a reply ready between 0.8 and 1.0 s then waits for
the end of "D'accord." (about 0.6 s), and the reply's own first frame p95 moved 1172 -> 1451 and
1600 -> 1459 ms (noise on 15 turns). Off by default: the first sound earlier or the answer earlier
is for callers on a box to settle (README "Performance")."""
ACK_EARLY: Final = True
"""When the reply is known at the end of the utterance to come later than the dead-air budget, the
acknowledgement plays at once instead of after the budget's silence: the caller hears "D'accord."
right after they stop, and the reply follows it as before. Known from
- the recogniser's backlog: frames of the utterance it has not taken yet (`Utterance.unread`),
  counted at the pace of speech (20 ms each). On a loaded box it falls behind the caller: `make
  bench`, 4 calls, 60 turns (2026-12-07): 8 turns' text came later than the budget after the end
  (360-822 ms); the backlog foresaw 6 of them, and 2 that came at 260-266 ms (budgets 316-319 ms),
  whose reply then waited for the end of "D'accord." (about 0.55 s). Counted at the recogniser's own
  measured pace per frame it foresaw 2 (it drains slower than it keeps up);
- the voice: the reply's first sentence is not pre-rendered and its first piece, at the voice's
  measured pace, would pass the budget (rare: caller-facing templates open with a fixed sentence).
Measured in the same runs, 4 calls, two each: first sound p95 913 / 815 ms against 1031 / 1037, the
reply's own first frame p95 1372 / 1367 against 1588 / 1765 (`make bench`: 4-calls-ack-after-budget,
the former behaviour)."""
ENGINE_TIMEOUT_S: Final = 2.0
"""An engine that has not answered this long is taken as hung: the recogniser's final text after the
end of an utterance, or the next audio of a reply being synthesised. The call turns into a voice
message (its prompts are pre-rendered), the lead kept. `make bench` shows the recogniser's queue
passing this from 8 calls on the stand-in model: an overloaded box takes messages rather than
leaving callers in silence."""
MAX_MESSAGE_S: Final = 120.0
"""Longest voice message, seconds."""


class Pipeline(StrEnum):
    """How a turn is processed. STREAMING is the product. NAIVE is the textbook baseline that
    `make bench` measures against, on the same code: the recogniser gets the utterance only once it
    has ended, the whole reply is synthesised before its first frame plays, nothing is pre-rendered
    and no acknowledgement covers a slow reply."""

    STREAMING = "streaming"
    NAIVE = "naive"


class RecogniserSetup(StrEnum):
    """When a call's recogniser is made (~100 ms of Kaldi set-up). BACKGROUND is the product: in a
    worker thread while the greeting plays. BLOCKING makes it on the event loop before the greeting,
    as the first version did: `make bench` measures what the background set-up buys in the same run."""

    BACKGROUND = "background"
    BLOCKING = "blocking"


@dataclass(frozen=True)
class CallTiming:
    first_turn_wait_s: float = FIRST_TURN_WAIT_S
    next_turn_wait_s: float = NEXT_TURN_WAIT_S
    ack_after_s: float = ACK_AFTER_S
    ack_early: bool = ACK_EARLY
    dead_air_s: float = DEAD_AIR_S
    max_message_s: float = MAX_MESSAGE_S
    pipeline: Pipeline = Pipeline.STREAMING
    recogniser_setup: RecogniserSetup = RecogniserSetup.BACKGROUND
    engine_timeout_s: float = ENGINE_TIMEOUT_S

    def ack_by(self, ended_at: float, decided_at: float) -> float:
        """When an acknowledgement plays if no reply audio is ready (monotonic s): `ack_after_s` after
        the end was decided, or earlier to keep the silence since the caller's last word (`ended_at`)
        within `dead_air_s` when that is set; never before the decision."""
        by = decided_at + self.ack_after_s
        return min(by, max(decided_at, ended_at + self.dead_air_s)) if self.dead_air_s > 0 else by
