"""The Vosk engine keeps its recognisers between calls (agent/asr/vosk_engine.py), on the real Vosk
code and the packaged Korean model: a kept recogniser serves the next call and keeps nothing of the
last one; one cut off mid-utterance or whose step failed is not kept; the warm-up at start keeps
the configured number."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from agent.asr.base import AsrError, AsrSettings
from agent.asr.vosk_engine import VoskEngine, VoskSession
from agent.audio.frames import split_frames
from agent.devtools.faults import FAULTS
from agent.engines import load_asr
from tests.unit.test_engines import NO_MODELS, korean_call_audio


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    made, _ = load_asr(NO_MODELS)
    assert isinstance(made, VoskEngine)
    return made


@pytest.fixture
def vosk(engine: VoskEngine) -> Iterator[VoskEngine]:
    engine._idle.clear()
    yield engine
    engine._idle.clear()
    FAULTS.configure("")


def _idle_after_close(engine: VoskEngine, session: VoskSession, timeout: float = 5.0) -> int:
    """Close the session and wait until its release has run on a recognition thread."""
    session.close()
    end = time.monotonic() + timeout
    while not session._closed and time.monotonic() < end:
        time.sleep(0.01)
    assert session._closed, "the release never ran"
    return engine.idle_recognisers


async def _said(session: VoskSession, audio: np.ndarray, finish: bool = True) -> str:
    for frame in split_frames(audio, 8000):
        await session.feed(frame)
    return (await session.finish()).text if finish else ""


AUDIO = [korean_call_audio(t) for t in ("안녕하세요", "아니요 감사합니다", "하나 둘 셋")]


def test_a_kept_recogniser_serves_the_next_call_and_keeps_nothing_of_the_last_one(vosk: VoskEngine) -> None:
    first = vosk.session(8000)
    assert all(asyncio.run(_said(first, a)) for a in AUDIO)
    assert _idle_after_close(vosk, first) == 1
    made = vosk.recognisers_made
    second = vosk.session(8000)
    assert second._rec is first._rec and vosk.recognisers_made == made  # no new recogniser
    # Nothing of the first call's audio reaches the second: silence is heard as nothing, and speech
    # is heard again. (Word for word, Vosk's results on this robotic Korean differ by a word between
    # recognisers, new or kept, depending on what the process decoded before: not compared.)
    assert asyncio.run(_said(second, np.zeros(8000, np.int16))) == ""
    assert all(asyncio.run(_said(second, a)) for a in AUDIO)
    assert _idle_after_close(vosk, second) == 1


def test_a_recogniser_left_mid_utterance_or_failed_is_not_kept_and_takes_no_more_audio(vosk: VoskEngine) -> None:
    cut = vosk.session(8000)
    asyncio.run(_said(cut, AUDIO[0], finish=False))  # the caller hung up while speaking
    assert _idle_after_close(vosk, cut) == 0
    with pytest.raises(AsrError, match="ended"):
        asyncio.run(_said(cut, AUDIO[1]))

    FAULTS.configure("asr=crash@1")  # Kaldi's thread raises in the final result
    failed = vosk.session(8000)
    with pytest.raises(AsrError):
        asyncio.run(_said(failed, AUDIO[0]))
    assert _idle_after_close(vosk, failed) == 0

    limited = vosk.session(8000, ["네", "아니요"])  # a phrase list: its own graph, never kept
    asyncio.run(_said(limited, AUDIO[1]))
    assert _idle_after_close(vosk, limited) == 0


def test_the_warm_up_keeps_the_configured_recognisers_for_the_first_calls(vosk: VoskEngine) -> None:
    try:
        vosk.configure(AsrSettings(warm=2))
        made = vosk.recognisers_made
        assert vosk.warm_up(AUDIO[:2], 8000) == 2
        assert vosk.idle_recognisers == 2 and vosk.recognisers_made == made + 2
        taken = [vosk.session(8000) for _ in range(3)]
        assert vosk.idle_recognisers == 0 and vosk.recognisers_made == made + 3  # the third call: a new one
        assert all(asyncio.run(_said(s, AUDIO[2])) for s in taken)  # warm or new, each hears the speech
        for s in taken:
            s.close()
        end = time.monotonic() + 5
        while vosk.idle_recognisers < 3 and time.monotonic() < end:
            time.sleep(0.01)
        assert vosk.idle_recognisers == 3
        vosk.configure(AsrSettings(keep=3, warm=5))
        vosk._idle.clear()
        assert vosk.warm_up(AUDIO[:1], 8000) == 3  # never more than are kept
        vosk._idle.clear()
        stopping = threading.Event()
        stopping.set()
        assert vosk.warm_up(AUDIO[:2], 8000, stopping) == 0 and vosk.idle_recognisers == 0  # the service stops
        vosk.configure(AsrSettings(keep=0))
        assert vosk.idle_recognisers == 0  # those kept beyond the new limit are let go
        last = vosk.session(8000)
        assert asyncio.run(_said(last, AUDIO[0]))
        assert _idle_after_close(vosk, last) == 0  # keep: 0, a new recogniser for every call
    finally:
        vosk.configure(AsrSettings())


def test_a_call_that_ends_during_a_hung_step_releases_without_waiting_and_drops_the_recogniser(
        vosk: VoskEngine) -> None:
    FAULTS.configure("asr=hang@1", hang_s=5.0)  # the final result hangs in Kaldi's thread

    hung = vosk.session(8000)

    async def go() -> tuple[float, int, str]:
        for frame in split_frames(AUDIO[0], 8000):
            await hung.feed(frame)
        finishing = asyncio.ensure_future(hung.finish())
        await asyncio.sleep(0.2)
        finishing.cancel()  # the call ended while its recogniser hung
        started = time.monotonic()
        hung.close()
        closed_in = time.monotonic() - started
        # The other recognition thread is still free for another call's steps meanwhile (a job, not
        # a decoding: the threads run at nice 10, and three test streams on two cores starve them).
        free = await asyncio.wait_for(vosk.run(lambda: "free"), 3.0)
        return closed_in, vosk.idle_recognisers, free

    closed_in, idle, free = asyncio.run(go())
    assert closed_in < 0.05 and idle == 0 and free == "free" and not hung._closed  # the step still hangs
    end = time.monotonic() + 10
    while not hung._closed and time.monotonic() < end:
        time.sleep(0.05)
    assert hung._closed, "the hung step's end did not release the session"
    assert vosk.idle_recognisers == 0  # a recogniser that hung is not kept
