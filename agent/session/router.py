"""Which script a call runs: the conversation for a new caller (the dialplan of the dialled
number), or the follow-up of a blind transfer that came back failed."""

from __future__ import annotations

import logging

from agent.actions import transfer as actions
from agent.session.deps import SessionDeps
from agent.session.live import LiveSession, presented_number
from agent.session.message import MessageTaker
from agent.session.transfer_flow import TransferFlow
from agent.store.schema import LeadStatus
from agent.telephony.call import Call, CallInfo, CallOutcome, Script
from agent.telephony.controller import TRANSFER_FAILED_ARG

log = logging.getLogger(__name__)

VAR_DID = "STANDARDISTE_DID"
"""Set by extensions.conf [standardiste-inbound] (inherited), read back after a blind transfer."""


class Sessions:
    """The controller's call factory."""

    def __init__(self, deps: SessionDeps) -> None:
        self.deps = deps

    def __call__(self, info: CallInfo) -> Script:
        if info.kind == TRANSFER_FAILED_ARG:
            return self._blind_transfer_failed
        return LiveSession(self.deps, self.deps.plan_for(info.did)).run

    async def over_capacity(self, info: CallInfo, outcome: CallOutcome) -> None:
        """A caller the controller sent to the dialplan's voice message (too many calls at once): the
        call and its lead are kept like any other (the caller's number, the business), and its voice
        message is attached to the lead once recorded (by the channel, `attach_dialplan_messages`)."""
        store = self.deps.store
        if store.broken or store.failing is not None:
            return  # (said when it broke; the voice message is kept beside the others)
        plan = self.deps.plan_for(info.did)
        call_id = await store.open_call(channel_id=info.channel_id, did=info.did,
                                        caller_id=presented_number(info.caller_number) or "",
                                        dialplan=plan.file, trade=plan.trade.trade, business=plan.business)
        store.set_lead(call_id, status=LeadStatus.MESSAGE)
        store.end_call(call_id, str(outcome), [])

    async def _blind_transfer_failed(self, call: Call) -> None:
        """The dialplan's Dial() failed: next target, else tell the caller and take a message."""
        store = self.deps.store
        plan = self.deps.plan_for(await call.get_variable(VAR_DID) or "")
        raw_id = await call.get_variable(actions.VAR_CALL) or ""
        index = int(await call.get_variable(actions.VAR_INDEX) or "0")
        call_id = int(raw_id) if raw_id.isdigit() else 0
        if not call_id:
            call_id = await store.open_call(channel_id=call.channel_id, did="",
                                            caller_id=presented_number(call.info.caller_number) or "",
                                            dialplan=plan.file, trade=plan.trade.trade, business=plan.business)
        call.at_end(lambda c: store.end_call(call_id, str(c.outcome), c.trace.as_dict()))
        status = call.info.args[1] if len(call.info.args) > 1 else ""
        failure = actions.failure_from_dialstatus(status)
        targets = plan.transfer.targets
        target = targets[min(index, len(targets) - 1)]
        store.add_action(call_id, "transfer", target, "failed", failure.value)
        if index + 1 < len(targets):
            store.add_action(call_id, "transfer", targets[index + 1], "handed to the dialplan", "blind")
            await actions.blind(call, plan.transfer, index + 1, call_id)
            return
        flow = TransferFlow(self.deps, plan, call_id, conv=None)
        await flow.failed(call, MessageTaker(self.deps, plan, call_id), failure)
