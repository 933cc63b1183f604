"""Calling out from a call: ring an endpoint inside Asterisk (ARI channels/create + dial), play a
file to it, read its keys. The outcome of a ring is known (answered, busy, no answer,
unreachable), which `channels/{id}/redirect` would not tell us.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum
from typing import Final

from agent.telephony.ari import AriError
from agent.telephony.call import Call
from agent.telephony.events import ChannelGone, Dial, DtmfReceived, Event, PlaybackEvent, StasisEnd, StateChanged

log = logging.getLogger(__name__)

OUTBOUND_ARG: Final = "outbound"
"""Stasis argument of the channels we create (the controller starts no call for them)."""
RING_GRACE_S: Final = 2.0
"""Our own timer runs this much past Asterisk's dial timeout before we give up on a ring, seconds."""


class DialResult(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no answer"
    UNREACHABLE = "unreachable"


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
        await call.ari.request("POST", "/channels/create", params={
            "endpoint": endpoint, "app": call.ari.app, "appArgs": OUTBOUND_ARG, "channelId": leg,
            "originator": call.channel_id})
        if caller_id:
            await call.set_variable(leg, "CALLERID(num)", caller_id)
        await call.ari.request("POST", f"/channels/{leg}/dial",
                               params={"caller": call.channel_id, "timeout": str(int(timeout_s))})
    except AriError as exc:
        log.warning("call %s: cannot ring the transfer target (%s)", call.tag, exc)
        await call.hang_up_leg(leg)
        return leg, DialResult.UNREACHABLE
    call.trace.mark("transfer_ringing")

    def ended(event: Event) -> bool:
        if isinstance(event, Dial):
            return event.peer_id == leg and dial_result(event.status) is not None
        if isinstance(event, StateChanged):
            return event.channel.id == leg and event.channel.state == "Up"
        return isinstance(event, (ChannelGone, StasisEnd)) and event.channel.id == leg

    event = await call.wait_event(ended, timeout_s + RING_GRACE_S)
    if event is None:
        result = DialResult.NO_ANSWER
    elif isinstance(event, Dial):
        result = dial_result(event.status) or DialResult.UNREACHABLE
    elif isinstance(event, StateChanged):
        result = DialResult.ANSWERED
    else:
        cause = event.cause if isinstance(event, ChannelGone) else 0
        result = _CAUSES.get(cause, DialResult.UNREACHABLE)
    if result is not DialResult.ANSWERED:
        await call.hang_up_leg(leg)
    call.trace.mark(f"transfer_{result.value.replace(' ', '_')}")
    return leg, result


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


async def playback_done(call: Call, playback: str, timeout_s: float) -> bool:
    event = await call.wait_event(
        lambda e: isinstance(e, PlaybackEvent) and e.playback_id == playback and e.type == "PlaybackFinished",
        timeout_s)
    return event is not None
