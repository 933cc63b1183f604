"""An utterance that ends as `Call.listen` runs out of time is never lost (it was, about 1 run in 15
of the live kill -9 test: the caller's name was heard, the turn timed out at that very moment and the
answer went down with the cancelled wait; the caller was asked again). The call's ARI is a stub
(nothing here reaches Asterisk); the media, its queue of ended utterances and the timer are real."""

from __future__ import annotations

import asyncio

from agent.audio.utterance import Utterance
from agent.telephony.call import Call, CallInfo
from agent.telephony.media import CallMedia, MediaSettings

WAIT_S = 0.05
OFFSETS_MS = [x / 10 for x in range(-20, 21)]
"""When the utterance ends around the listening deadline, ms: before, at, after."""


def _call() -> Call:
    call = Call(None, CallInfo("caller.1", ""), media=MediaSettings(), script=lambda _c: asyncio.sleep(0),  # type: ignore[arg-type]
                register=lambda *_: None, unregister=lambda *_: None)
    call.media = CallMedia(None, "caller.1", MediaSettings(), call.trace, lambda _id: None)  # type: ignore[arg-type]
    return call


async def _one(offset_ms: float) -> tuple[Utterance | None, Utterance | None, Utterance]:
    call = _call()
    assert call.media is not None
    said = Utterance(0.0)
    loop = asyncio.get_running_loop()
    loop.call_later(WAIT_S + offset_ms / 1000, call.media.turns.put, said)
    first = await call.listen(WAIT_S)
    second = await call.listen(0.01) if first is None else None
    return first, second, said


def test_an_utterance_ending_at_the_deadline_is_returned_now_or_by_the_next_listen() -> None:
    async def go() -> list[tuple[Utterance | None, Utterance | None, Utterance]]:
        return [await _one(offset) for offset in OFFSETS_MS]

    results = asyncio.run(go())
    lost = [offset for offset, (first, second, said) in zip(OFFSETS_MS, results, strict=True)
            if said not in (first, second)]
    assert lost == [], f"utterances lost when they ended {lost} ms from the deadline"
    assert any(first is not None for first, _, _ in results) and any(first is None for first, _, _ in results)


def test_a_late_event_is_still_the_answer_of_wait_event() -> None:
    async def go() -> list[bool]:
        got = []
        for offset in OFFSETS_MS:
            call = _call()
            event = object()
            asyncio.get_running_loop().call_later(WAIT_S + offset / 1000, lambda c=call, e=event: [
                w.future.set_result(e) for w in c._waiters if not w.future.done()])
            answer = await call.wait_event(lambda _e: True, WAIT_S)
            got.append(answer is event or offset > 0)
        return got

    assert all(asyncio.run(go()))
