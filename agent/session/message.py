"""Message mode: the greeting (or what went wrong), a beep, the caller's voice message, goodbye.

Used when no French speech model is installed, when the dialplan says `mode: message`, when an
engine fails mid-call, and after a transfer the artisan did not take. The recording is saved after
every utterance (a dropped call loses nothing) and attached to the call's lead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agent.audio.vad import UtteranceEnded
from agent.audio.wav import write_wav
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.phrases import ENGINE_FAILED, MESSAGE_MODE_GOODBYE, MESSAGE_MODE_PROMPT
from agent.files import write_private
from agent.session.deps import SessionDeps
from agent.store.schema import CallStage
from agent.telephony.call import Call

log = logging.getLogger(__name__)


class MessageTaker:
    def __init__(self, deps: SessionDeps, plan: Dialplan, call_id: int) -> None:
        self.deps = deps
        self.plan = plan
        self.call_id = call_id
        self.recording: Path | None = None

    def intro_text(self) -> str:
        return f"{self.plan.greeting} {MESSAGE_MODE_PROMPT}"

    @staticmethod
    def engine_failed_text() -> str:
        return f"{ENGINE_FAILED} {MESSAGE_MODE_PROMPT}"

    async def run(self, call: Call, intro: str) -> Path | None:
        """Play `intro` and the beep, record until the caller stops, say goodbye. The prompts are
        pre-rendered (but in the first seconds after a cold start); a voice that fails on one that is
        not is skipped to the beep: the message is still taken."""
        book = self.deps.book
        timing = self.deps.timing
        if self.call_id:
            self.deps.store.set_stage(self.call_id, CallStage.MESSAGE)
        await call.say(book.speak(intro, then=book.beep))
        utterances: list[UtteranceEnded] = []
        wait = timing.first_turn_wait_s
        started = time.monotonic()
        while time.monotonic() - started < timing.max_message_s:
            heard = await call.listen(wait)
            if heard is None:
                break
            call.trace.mark("end_of_utterance", heard.ended.decided_at)
            call.trace.mark("voice_message_part", heard.ended.decided_at)  # make bench: not a conversation turn
            utterances.append(heard.ended)
            self.recording = self._save(call, utterances)
            if self.call_id:  # 0: the store could not even open the call
                self.deps.store.set_lead(self.call_id, recording=str(self.recording))
            wait = timing.next_turn_wait_s
        if self.recording is not None:
            log.info("call %s: voice message saved (%d utterance(s))", call.tag, len(utterances))
            if self.call_id:
                self.deps.store.add_action(self.call_id, "recording", "", "saved")
        if self.deps.store.failing is not None:
            self._save_unstored(call)
        await call.say(book.speak(MESSAGE_MODE_GOODBYE, then=[]))
        return self.recording

    def _save_unstored(self, call: Call) -> None:
        """The store cannot be written: who called goes beside the recording (`doctor` lists these),
        so the artisan can still call back. Personal data: private to the service's user."""
        card = {"call_id": self.call_id, "caller": call.info.caller_number, "at": int(time.time()),
                "recording": self.recording.name if self.recording else None, "store_error": self.deps.store.failing}
        write_private((self.recording or self._path(call)).with_suffix(".json"), json.dumps(card), 0o640)
        log.error("call %s: the store cannot be written: the caller's number is kept beside the voice message",
                  call.tag)

    def _save(self, call: Call, utterances: Sequence[UtteranceEnded]) -> Path:
        """Everything said so far as one WAV in the messages dir (named by time and call, no number);
        rewritten after each utterance with the same name."""
        rate = utterances[0].frames[0].rate
        gap = np.zeros(rate // 4, dtype=np.int16)
        parts: list[np.ndarray] = []
        for u in utterances:
            parts += [f.samples for f in u.frames] + [gap]
        path = self.recording or self._path(call)
        write_wav(path, np.concatenate(parts), rate)
        return path

    def _path(self, call: Call) -> Path:
        """Named by time and call (the channel's id when the store gave the call none), never the number."""
        tag = self.call_id or call.channel_id.replace(".", "-")
        return self.deps.messages_dir / f"message-{int(time.time())}-{tag}.wav"
