"""The session's side of a transfer: the caller hears ringback, the artisan hears the whisper,
each step is stored, and a transfer that does not happen becomes a voice message (or, if the
dialplan says so, an appointment), with the lead stored as `transfer_failed` and the reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agent.actions import transfer as actions
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.phrases import NOT_REACHED, TRANSFER_FAILED, whisper
from agent.dialogue.policy import Conversation
from agent.dialogue.state import TransferMode
from agent.session.deps import SessionDeps
from agent.session.message import MessageTaker
from agent.session.phrasebook import ringback
from agent.store.schema import CallStage, LeadStatus, Who
from agent.telephony.call import Call
from agent.tts.prompt_files import Prompt, render_prompt

log = logging.getLogger(__name__)


class TransferFlow:
    def __init__(self, deps: SessionDeps, plan: Dialplan, call_id: int, conv: Conversation | None) -> None:
        self.deps = deps
        self.plan = plan
        self.call_id = call_id
        self.conv = conv

    def _step(self, target: str, result: str, reason: str) -> None:
        self.deps.store.add_action(self.call_id, "transfer", target, result, reason)

    async def run(self, call: Call, taker: MessageTaker) -> str:
        """Put the caller through; if that fails, what the conversation says next ("" when the call
        ends in a voice message, taken here)."""
        settings = self.plan.transfer
        self.deps.store.set_stage(self.call_id, CallStage.TRANSFER)
        if settings.mode is TransferMode.BLIND:
            self._step(settings.targets[0], "handed to the dialplan", "blind")
            await actions.blind(call, settings, 0, self.call_id)
            return ""
        assert call.media is not None
        caller_id = call.info.caller_number or None
        whisper_prompt = await asyncio.to_thread(self._whisper)
        tone = asyncio.ensure_future(call.media.play(ringback(call.media.rate), interruptible=False))
        try:
            result = await actions.attended(call, settings, caller_id=caller_id, whisper=whisper_prompt,
                                            step=self._step)
        finally:
            if call.media is not None:
                call.media.stop_playback()
            tone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tone
            # It holds the caller's name and address: gone once played.
            whisper_prompt.path.unlink(missing_ok=True)
            whisper_prompt.path.with_name(f".{whisper_prompt.path.stem}.sha").unlink(missing_ok=True)
        if result.connected:
            self.deps.store.set_lead(self.call_id, status=LeadStatus.TRANSFERRED)
            return ""
        assert result.failure is not None
        return await self.failed(call, taker, result.failure)

    async def failed(self, call: Call, taker: MessageTaker, failure: actions.TransferFailure) -> str:
        """Store the reason, then what the dialplan's `on_failure` says: the conversation's next words
        (an appointment to offer), or the caller is told and leaves a voice message here ("")."""
        log.info("call %s: transfer failed (%s)", call.tag, failure.value)
        store = self.deps.store
        store.set_lead(self.call_id, status=LeadStatus.TRANSFER_FAILED, reason=failure.value)
        self.deps.outbox.unreached(store, self.plan, self.call_id)
        if self.conv is not None:
            follow = self.conv.after_failed_transfer()
            if follow:
                return f"{NOT_REACHED} {follow}"
        store.add_turn(self.call_id, Who.AGENT, TRANSFER_FAILED)
        await taker.run(call, intro=TRANSFER_FAILED)
        return ""

    def _whisper(self) -> Prompt:
        """The whisper for the artisan, rendered to a file Asterisk plays (deleted after use)."""
        lead = self.conv.lead if self.conv is not None else None
        urgency = self.conv.urgency if self.conv is not None else "normal"
        text = whisper(urgency, lead.problem if lead else None, lead.name if lead else None,
                       lead.address if lead else None)
        return render_prompt(text, self.deps.prompts_dir, name=f"whisper-{self.call_id}",
                             engine=self.deps.book.engine)
