"""The call's media set-up against a scripted ARI (`ScriptedAri`, a fake: Asterisk's timing cannot be
forced to lose the race on demand). The real-Asterisk burst test is in test_live_faults.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.telephony.ari import AriError
from agent.telephony.call import Call, CallInfo, CallOutcome
from agent.telephony.media import JOIN_RETRY_BUDGET_S, CallMedia, CallTrace, MediaSettings


class ScriptedAri:
    """Answers ARI requests from a script; `not_in_stasis` addChannel calls fail with 422 first."""

    app = "standardiste"

    def __init__(self, not_in_stasis: int) -> None:
        self.not_in_stasis = not_in_stasis
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, **_: Any) -> Any:
        self.calls.append((method, path))
        if path == "/channels/externalMedia":
            return {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "9"}}
        if path.endswith("/addChannel") and self.not_in_stasis > 0:
            self.not_in_stasis -= 1
            raise AriError("POST addChannel: HTTP 422 Channel not in Stasis application", status=422)
        return None


def _media(ari: ScriptedAri) -> CallMedia:
    return CallMedia(ari, "caller.1", MediaSettings(), CallTrace(), lambda _id: None)  # type: ignore[arg-type]


def test_the_media_channel_joins_only_once_it_is_in_the_application() -> None:
    async def go() -> tuple[list[tuple[str, str]], int]:
        ari = ScriptedAri(not_in_stasis=0)
        media = _media(ari)
        start = asyncio.create_task(media.start())
        await asyncio.sleep(0.1)
        assert not any(p.endswith("/addChannel") for _, p in ari.calls)  # still waiting for StasisStart
        media.in_stasis.set()
        await asyncio.wait_for(start, 1)
        await media.close()
        return ari.calls, media.join_retries
    calls, retries = asyncio.run(go())
    assert [p for _, p in calls][:3] == ["/channels/externalMedia", calls[1][1], calls[2][1]]
    assert calls[2][1].endswith("/addChannel") and retries == 0


def test_a_422_not_in_stasis_is_retried_within_the_budget() -> None:
    async def go() -> int:
        ari = ScriptedAri(not_in_stasis=3)
        media = _media(ari)
        media.in_stasis.set()
        await media.start()
        await media.close()
        return media.join_retries
    assert asyncio.run(go()) == 3


def test_a_media_channel_that_never_enters_fails_after_the_budget() -> None:
    async def go() -> None:
        media = _media(ScriptedAri(not_in_stasis=10**9))
        try:
            await media.start()
        finally:
            await media.close()
    with pytest.raises(AriError, match="422"):
        asyncio.run(asyncio.wait_for(go(), 3 * JOIN_RETRY_BUDGET_S + 1))


class CallerLeavesAri(ScriptedAri):
    """The bridge join fails with 400 "Channel not found", as when the caller hangs up during media
    set-up and Asterisk answers before their hang-up event reaches us; `caller_there` is what a
    GET of the caller's channel finds."""

    def __init__(self, caller_there: bool) -> None:
        super().__init__(not_in_stasis=0)
        self.caller_there = caller_there

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        if path.endswith("/addChannel"):
            self.calls.append((method, path))
            raise AriError("POST addChannel: HTTP 400 Channel not found", status=400)
        if (method, path) == ("GET", "/channels/caller.1") and not self.caller_there:
            self.calls.append((method, path))
            raise AriError("GET /channels/caller.1: HTTP 404 Channel not found", status=404)
        return await super().request(method, path, params=params, **kw)


@pytest.mark.parametrize(("caller_there", "outcome"), [(False, CallOutcome.CALLER_HUNG_UP),
                                                       (True, CallOutcome.MEDIA_FAILED)])
def test_a_caller_who_leaves_during_media_set_up_is_a_hang_up_not_a_media_failure(
        caller_there: bool, outcome: CallOutcome) -> None:
    async def go() -> tuple[Call, list[tuple[str, str]]]:
        ari = CallerLeavesAri(caller_there)
        call = Call(ari, CallInfo("caller.1", "", answered=True), media=MediaSettings(),  # type: ignore[arg-type]
                    script=lambda _c: asyncio.sleep(0), register=lambda *_: None, unregister=lambda *_: None)
        run = asyncio.create_task(call.run())
        await asyncio.sleep(0)  # the call answered (already up) and made its media: first step
        assert call.media is not None
        call.media.in_stasis.set()
        await asyncio.wait_for(run, 3)
        return call, ari.calls

    call, calls = asyncio.run(go())
    assert call.outcome is outcome
    assert ("GET", "/channels/caller.1") in calls
    # Only a caller still there is sent on to the dialplan's voice message.
    assert (("POST", "/channels/caller.1/continue") in calls) is caller_there
