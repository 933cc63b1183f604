"""Barge-in: whether the caller speaks over the receptionist, from the frames heard and sent; and
what an utterance heard around our speech is (`heard_over`): a turn, the rest of the last one, or
our own echo.

While we speak, `min_frames` voiced caller frames in a row stop our speech. The echo of our own
prompt coming back from the handset must not do that: the first `guard_ms` of each prompt are
ignored, and caller audio counts only if louder than our own output of the last 300 ms minus
`echo_return_loss_db`. Pure: no clock, no I/O; the media and the session feed it and act on its
answers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final

OUT_LEVEL_WINDOW: Final = 15
"""Outgoing frames (300 ms) over which our own level is taken for the echo gate."""


@dataclass(frozen=True)
class BargeInSettings:
    enabled: bool = True
    min_frames: int = 2
    """Consecutive voiced caller frames during our speech that stop it (2 x 20 ms)."""
    guard_ms: int = 150
    """After our speech starts, this long is ignored: the line's echo of our first syllable, ms."""
    echo_return_loss_db: float = 12.0
    """Caller audio counts only if louder than our own recent output minus this much, dB: the echo
    of our prompt coming back through the handset is quieter than that."""


class BargeIn:
    """One per call."""

    def __init__(self, settings: BargeInSettings) -> None:
        self.settings = settings
        self._levels: deque[float] = deque(maxlen=OUT_LEVEL_WINDOW)
        self._speaking_since: float | None = None
        """When our interruptible speech started (monotonic s); None while we are not speaking."""
        self._run = 0

    def speaking(self, since: float | None) -> None:
        """Our interruptible speech started at `since`, or (None) ended or is not interruptible."""
        self._speaking_since = since
        self._run = 0

    def sent(self, level: float) -> None:
        """The RMS of the frame just sent to the caller (0 for silence)."""
        self._levels.append(level)

    def heard(self, level: float, voiced: bool, at: float) -> bool:
        """A caller frame (its RMS, whether the VAD finds it voiced, its arrival): True when the
        caller has barged in (once; `speaking` again resets)."""
        cfg = self.settings
        since = self._speaking_since
        if not cfg.enabled or since is None:
            self._run = 0
            return False
        if at - since < cfg.guard_ms / 1000:
            return False
        echo = max(self._levels, default=0.0) * 10 ** (-cfg.echo_return_loss_db / 20)
        self._run = self._run + 1 if level > echo and voiced else 0
        if self._run >= cfg.min_frames:
            self._speaking_since = None
            return True
        return False


class Heard(Enum):
    """What an utterance that ended after our reply to the last turn is."""

    TURN = "turn"
    """A turn of its own."""
    CONTINUES = "continues"
    """The rest of the last turn, which was ended early in a pause: the hangover would have made them
    one utterance, so it is read with it, against the same question."""
    ECHO = "echo"
    """Begun and ended while we spoke, without interrupting us: the line's echo of our speech."""


@dataclass(frozen=True)
class OurSpeech:
    """What we said after the caller's last turn: the acknowledgement that covered the wait, if any,
    and the reply."""

    began: float
    """When the first of it was asked to play (monotonic s)."""
    ended: float | None
    """When the last of it ended; None if it was interrupted."""
    interrupted: bool
    """The caller barged in on any part of it, the acknowledgement included."""


def heard_over(started_at: float, ended_at: float, last_early_end: float | None, ours: OurSpeech,
               join_s: float) -> Heard:
    """What the utterance from `started_at` to `ended_at` is. `last_early_end`: the end of the last
    turn if it was ended early in a pause (else None); `join_s`: the hangover, the longest pause
    inside one utterance.

    The rest of an early-ended turn started within `join_s` of its end, and either before anything
    of ours could be heard or by interrupting it: an utterance that begins while we speak and does
    not interrupt us may be our echo, never a continuation. An interruption of the acknowledgement
    counts: the caller who says "Martin" over "D'accord." after "Jean" has stopped it, and the reply
    that follows may well play to its end after "Martin" is over."""
    if (last_early_end is not None and started_at - last_early_end <= join_s
            and (started_at < ours.began or ours.interrupted)):
        return Heard.CONTINUES
    if not ours.interrupted and ours.ended is not None and ours.began <= started_at and ended_at < ours.ended:
        return Heard.ECHO
    return Heard.TURN
