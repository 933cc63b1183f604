"""Calling out from a call: ring an endpoint inside Asterisk (ARI channels/create + dial), play a
file to it, read its keys. The outcome of a ring is known (answered, busy, no answer,
unreachable), which `channels/{id}/redirect` would not tell us.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from enum import StrEnum
from typing import Final

from agent.telephony.ari import AriError
from agent.telephony.call import Call
from agent.telephony.events import ChannelGone, Dial, DtmfReceived, Event, StasisEnd, StateChanged

log = logging.getLogger(__name__)

OUTBOUND_ARG: Final = "outbound"
"""Stasis argument of the channels we create (the controller starts no call for them)."""
RING_GRACE_S: Final = 2.0
"""Our own timer runs this much past Asterisk's dial timeout before we give up on a ring, seconds."""
END_GRACE_S: Final = 0.5
"""After the dialled channel leaves, how long we wait for the reason (Dial status, cause), seconds."""


class DialResult(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no answer"
    UNREACHABLE = "unreachable"


DIAL_RETRIES: Final = 10
DIAL_RETRY_S: Final = 0.05
"""A `dial` refused as "not in Stasis" is asked again this many times, this far apart (s)."""

_DIALSTATUS: Final = {"ANSWER": DialResult.ANSWERED, "BUSY": DialResult.BUSY, "NOANSWER": DialResult.NO_ANSWER,
                      "CANCEL": DialResult.NO_ANSWER, "CONGESTION": DialResult.UNREACHABLE,
                      "CHANUNAVAIL": DialResult.UNREACHABLE}
_CAUSES: Final = {17: DialResult.BUSY, 18: DialResult.NO_ANSWER, 19: DialResult.NO_ANSWER,
                  21: DialResult.BUSY}
"""Q.850 hangup causes of a dialled channel that ends before answering; any other is unreachable."""


def dial_result(status: str) -> DialResult | None:
    """An Asterisk DIALSTATUS as our result; None for the in-between ones (RINGING, PROGRESS)."""
    return _DIALSTATUS.get(status.upper())


async def ring(call: Call, endpoint: str, *, caller_id: str | None, timeout_s: float) -> tuple[str, DialResult]:
    """Ring `endpoint` (PJSIP/artisan, PJSIP/0612345678@trunk) presenting `caller_id`; return the new
    channel's id and how the ring ended. The channel is hung up unless it answered."""
    leg = call.new_leg()
    try:
        # The caller ID goes with the creation: the new channel is not in Stasis yet when `create`
        # returns, and a `variable` request then can get "409 Channel not in Stasis application"
        # (seen once in about 20 test runs on a loaded machine: the transfer failed as unreachable).
        await call.ari.request("POST", "/channels/create", params={
            "endpoint": endpoint, "app": call.ari.app, "appArgs": OUTBOUND_ARG, "channelId": leg,
            "originator": call.channel_id}, body={"variables": {"CALLERID(num)": caller_id}} if caller_id else None)
        await _dial(call, leg, timeout_s)
    except AriError as exc:
        log.warning("call %s: cannot ring the transfer target (%s)", call.tag, exc)
        await call.hang_up_leg(leg)
        return leg, DialResult.UNREACHABLE
    call.trace.mark("transfer_ringing")
    result = await _ring_outcome(call, leg, timeout_s)
    if result is not DialResult.ANSWERED:
        await call.hang_up_leg(leg)
    call.trace.mark(f"transfer_{result.value.replace(' ', '_')}")
    return leg, result


async def _dial(call: Call, leg: str, timeout_s: float) -> None:
    """`dial` the new leg. It may not be in Stasis yet when `create` returned: Asterisk then answers
    409 "Channel not in Stasis application" (seen in about one loaded test run in twenty; the transfer
    failed as unreachable); asked again a few times, DIAL_RETRY_S apart."""
    for attempt in range(DIAL_RETRIES + 1):
        try:
            await call.ari.request("POST", f"/channels/{leg}/dial",
                                   params={"caller": call.channel_id, "timeout": str(int(timeout_s))})
            return
        except AriError as exc:
            if exc.status != 409 or attempt == DIAL_RETRIES:
                raise
            await asyncio.sleep(DIAL_RETRY_S)


async def _ring_outcome(call: Call, leg: str, timeout_s: float) -> DialResult:
    """Answered, or why not. The leg leaving Stasis (or a hang-up request) comes before the reason
    (the Dial status, the destroyed channel's cause): wait a moment for it after them."""
    started = time.monotonic()
    deadline = started + timeout_s + RING_GRACE_S
    hangup_cause = 0
    ending = False

    def about_leg(event: Event) -> bool:
        if isinstance(event, Dial):
            return event.peer_id == leg
        return isinstance(event, (StateChanged, ChannelGone, StasisEnd)) and event.channel.id == leg

    while (remaining := deadline - time.monotonic()) > 0:
        event = await call.wait_event(about_leg, remaining)
        if event is None:
            break
        log.debug("call %s: ring event %s", call.tag, event.type)
        if isinstance(event, Dial) and dial_result(event.status) is not None:
            return dial_result(event.status) or DialResult.UNREACHABLE
        if isinstance(event, StateChanged) and event.channel.state == "Up" and not ending:
            return DialResult.ANSWERED
        if isinstance(event, ChannelGone) and event.type == "ChannelDestroyed":
            return _CAUSES.get(event.cause or hangup_cause, _by_time(started, timeout_s))
        if isinstance(event, ChannelGone) and not event.data.get("soft"):
            hangup_cause = event.cause or hangup_cause
        if isinstance(event, (ChannelGone, StasisEnd)) and not ending:
            ending = True
            deadline = min(deadline, time.monotonic() + END_GRACE_S)
    if ending:
        return _CAUSES.get(hangup_cause, _by_time(started, timeout_s))
    return DialResult.NO_ANSWER


def _by_time(started: float, timeout_s: float) -> DialResult:
    """No reason given: a ring that lasted its whole timeout was not answered; a shorter one failed."""
    return DialResult.NO_ANSWER if time.monotonic() - started >= timeout_s - 0.5 else DialResult.UNREACHABLE


async def play_file(call: Call, channel_id: str, media_uri: str) -> str:
    """Start playing a sound file (`sound:/abs/path` without extension) to a channel; its playback id."""
    playback = f"sd-pb-{uuid.uuid4().hex[:12]}"
    call._own(playback)
    await call.ari.request("POST", f"/channels/{channel_id}/play/{playback}", params={"media": media_uri})
    return playback


async def stop_file(call: Call, playback: str) -> None:
    try:
        await call.ari.request("DELETE", f"/playbacks/{playback}", missing_ok=True)
    except AriError as exc:
        if exc.status not in (404, 409):
            raise


async def wait_key(call: Call, channel_id: str, keys: str, timeout_s: float) -> str | None:
    """The first of `keys` pressed on `channel_id` within the time, or None (also when it hung up)."""
    def pressed_or_gone(event: Event) -> bool:
        if isinstance(event, DtmfReceived):
            return event.channel.id == channel_id and event.digit in keys
        return isinstance(event, (ChannelGone, StasisEnd)) and event.channel.id == channel_id

    event = await call.wait_event(pressed_or_gone, timeout_s)
    return event.digit if isinstance(event, DtmfReceived) else None

