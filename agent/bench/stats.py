"""The bench's arithmetic: percentiles, late frames, turn timings and clock alignment, on plain
numbers so that each is unit-tested on synthetic traces."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

LATE_GAP_S: Final = 0.040
"""An outbound RTP gap longer than this at the phone is a late frame (two 20 ms frame times)."""
SPEECH_END_SLACK_S: Final = 0.5
"""The phone's last audible packet of a turn is looked for this long after its player ended."""
REPLY_MIN_GAP_S: Final = 0.04
"""A reply starts at least this long after the caller's last audible packet (not the same packet)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation); None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "max": max(values) if values else None}


@dataclass(frozen=True)
class Gaps:
    late: int
    """Gaps over LATE_GAP_S between consecutive packets."""
    max_gap_s: float
    packets: int


def late_frames(arrivals: Sequence[float], threshold_s: float = LATE_GAP_S) -> Gaps:
    """Gaps in a packet stream's arrival times (sorted or not)."""
    if len(arrivals) < 2:
        return Gaps(0, 0.0, len(arrivals))
    diffs = np.diff(np.sort(np.asarray(arrivals, dtype=np.float64)))
    return Gaps(int((diffs > threshold_s).sum()), float(diffs.max()), len(arrivals))


def first_audible(packets: Sequence[tuple[float, bool]], after: float, before: float = float("inf")) -> float | None:
    """Time of the first audible packet in (after, before)."""
    for at, audible in packets:
        if after < at < before and audible:
            return at
    return None


def last_audible(packets: Sequence[tuple[float, bool]], start: float, end: float) -> float | None:
    """Time of the last audible packet in [start, end]."""
    found = None
    for at, audible in packets:
        if at > end:
            break
        if at >= start and audible:
            found = at
    return found


@dataclass(frozen=True)
class Turn:
    speech_end: float
    """The caller's last audible packet of the turn (capture clock)."""
    reply_at: float | None
    """The first audible packet heard after it, before the next turn; None: no reply."""

    @property
    def latency_s(self) -> float | None:
        return None if self.reply_at is None else self.reply_at - self.speech_end


def turns(said: Sequence[tuple[float, bool]], heard: Sequence[tuple[float, bool]],
          spoken: Sequence[tuple[float, float]]) -> list[Turn]:
    """Each turn the phone spoke (its player's start and end, on the capture clock): the end of
    its audible packets, and the first audible reply after that."""
    out = []
    for i, (start, end) in enumerate(spoken):
        speech_end = last_audible(said, start - SPEECH_END_SLACK_S, end + SPEECH_END_SLACK_S)
        if speech_end is None:
            continue
        until = spoken[i + 1][0] if i + 1 < len(spoken) else float("inf")
        out.append(Turn(speech_end, first_audible(heard, speech_end + REPLY_MIN_GAP_S, until)))
    return out


def clock_offset(pairs: Sequence[tuple[float, float]]) -> float:
    """The offset to add to clock A to read clock B, from (a, b) readings of the same instants;
    the median, so that one reading taken late does not move it."""
    if not pairs:
        raise ValueError("no readings to align the clocks with")
    return float(statistics.median(b - a for a, b in pairs))


STAGES: Final = ("end_of_utterance", "asr_final", "policy_done", "tts_first_audio", "reply_first_frame")
"""The receptionist's marks of one turn, in order (agent/session/live.py, telephony/media.py)."""
STAGE_NAMES: Final = {
    "end_of_utterance": "end-of-utterance decision (VAD hangover)",
    "asr_final": "ASR final",
    "policy_done": "dialogue",
    "tts_first_audio": "TTS first audio",
    "reply_first_frame": "first frame sent",
    "transport": "Asterisk to the phone",
}


def stage_breakdown(marks: Sequence[tuple[str, float]], speech_end: float, heard_at: float | None) -> dict[str, float]:
    """One turn's time split by stage, seconds: from the caller's end of speech (already on the
    marks' clock) to each next mark of the turn, then to the reply heard at the phone. The marks
    are the call's trace; the turn's are the first of each after `speech_end`."""
    out: dict[str, float] = {}
    prev = speech_end
    for stage in STAGES:
        at = next((t for name, t in marks if name == stage and t >= prev), None)
        if at is None:
            return out
        out[stage] = at - prev
        prev = at
    if heard_at is not None and heard_at >= prev:
        out["transport"] = heard_at - prev
    return out
