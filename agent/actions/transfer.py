"""Putting a caller through to the artisan.

Attended (default): ring each target in turn presenting the caller's number; when one answers,
play the whisper (urgency, problem, name, address, "appuyez sur 1") and bridge on 1 inside
Asterisk, our media leaving the call. Blind: ARI continue into the dialplan's
`standardiste-transfer` context, which dials and brings the caller back on failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from agent.dialogue.dialplan import Transfer
from agent.telephony.call import Call
from agent.telephony.dialout import DialResult, play_file, ring, stop_file, wait_key
from agent.tts.prompt_files import Prompt

log = logging.getLogger(__name__)

TRANSFER_CONTEXT: Final = "standardiste-transfer"
VAR_TARGET: Final = "STANDARDISTE_TRANSFER_TARGET"
VAR_TIMEOUT: Final = "STANDARDISTE_TRANSFER_TIMEOUT"
VAR_INDEX: Final = "STANDARDISTE_TRANSFER_INDEX"
VAR_CALL: Final = "STANDARDISTE_CALL_ID"
"""Channel variables the blind transfer leaves on the caller's channel, read back on re-entry."""


class TransferFailure(StrEnum):
    """Why the caller was not put through (stored with the lead)."""

    REFUSED = "refused"
    """The artisan pressed 2."""
    TIMEOUT = "timeout"
    """The artisan answered but pressed no key in time."""
    BUSY = "busy"
    NO_ANSWER = "no answer"
    UNREACHABLE = "unreachable"


_FROM_DIAL: Final = {DialResult.BUSY: TransferFailure.BUSY, DialResult.NO_ANSWER: TransferFailure.NO_ANSWER,
                     DialResult.UNREACHABLE: TransferFailure.UNREACHABLE}


def failure_from_dialstatus(status: str) -> TransferFailure:
    """A DIALSTATUS the dialplan passed back (blind mode) as our reason."""
    from agent.telephony.dialout import dial_result

    return _FROM_DIAL.get(dial_result(status) or DialResult.UNREACHABLE, TransferFailure.UNREACHABLE)


@dataclass(frozen=True)
class TransferResult:
    connected: bool
    target: str
    failure: TransferFailure | None = None


Step = Callable[[str, str, str], None]
"""Reports each step: (target, result, reason) -> stored as an action of the call."""


async def attended(call: Call, settings: Transfer, *, caller_id: str | None, whisper: Prompt,
                   step: Step) -> TransferResult:
    """Try each target in order. Connected: returns once the bridged call has ended."""
    failure = TransferFailure.UNREACHABLE
    target = settings.targets[0]
    for target in settings.targets:
        leg, dialled = await ring(call, target, caller_id=caller_id, timeout_s=settings.ring_timeout_s)
        if dialled is not DialResult.ANSWERED:
            failure = _FROM_DIAL[dialled]
            step(target, "failed", failure.value)
            continue
        call.trace.mark("transfer_answered")
        playback = await play_file(call, leg, whisper.media_uri)
        key = await wait_key(call, leg, "12", whisper.duration_s + settings.key_timeout_s)
        await stop_file(call, playback)
        if key == "1":
            call.trace.mark("transfer_accepted")
            step(target, "connected", "")
            await call.bridge_to(leg)
            return TransferResult(True, target)
        failure = TransferFailure.REFUSED if key == "2" else TransferFailure.TIMEOUT
        call.trace.mark(f"transfer_{failure.value}")
        step(target, "failed", failure.value)
        await call.hang_up_leg(leg)
    return TransferResult(False, target, failure)


async def blind(call: Call, settings: Transfer, index: int, call_id: int) -> None:
    """Hand the caller to the dialplan to dial target `index`; a failure re-enters the application
    as ("transfer_failed", DIALSTATUS) with these variables still set."""
    for name, value in ((VAR_TARGET, settings.targets[index]), (VAR_TIMEOUT, str(settings.ring_timeout_s)),
                        (VAR_INDEX, str(index)), (VAR_CALL, str(call_id))):
        await call.set_variable(call.channel_id, name, value)
    call.trace.mark("transfer_blind")
    await call.hand_off(TRANSFER_CONTEXT, label=None)
