"""`LiveSession`: the conversation on a live call. Listen -> ASR -> `Conversation.turn` -> speech ->
actions, with every lead field stored the moment it is understood.

The caller's frames are fed to the recogniser as they arrive, so its text is ready right after the
end of the utterance; the reply is spoken sentence by sentence as it is synthesised (fixed
sentences come pre-rendered); if no reply audio is ready within the dead-air budget a short
acknowledgement plays. Any engine failure (StageError) turns the call into a voice message:
never silence, and the lead is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime

from agent.actions.agenda import CallAgenda
from agent.actions.booking_outcome import apply_booking
from agent.asr.base import AsrError, AsrSession
from agent.audio.barge_in import Heard, OurSpeech, heard_over
from agent.audio.frames import FRAME_S, AudioFrame
from agent.audio.utterance import Utterance
from agent.audio.vad import Paused
from agent.dialogue.dialplan import Dialplan
from agent.dialogue.lead import Upcoming
from agent.dialogue.phrases import ACKNOWLEDGEMENTS
from agent.dialogue.policy import Conversation
from agent.dialogue.slots import Slot
from agent.dialogue.state import Action, DialplanMode
from agent.errors import StageError
from agent.session.deps import SessionDeps
from agent.session.message import MessageTaker
from agent.session.timing import Pipeline, RecogniserSetup
from agent.session.transfer_flow import TransferFlow
from agent.session.turn_end import TurnEnd
from agent.store.db import StoreUnwritable
from agent.store.schema import CallStage, LeadStatus, Who
from agent.telephony.call import Call
from agent.tts.base import TtsError

log = logging.getLogger(__name__)


class LiveSession:
    def __init__(self, deps: SessionDeps, plan: Dialplan) -> None:
        self.deps = deps
        self.plan = plan
        self.call_id = 0
        self._utterances: asyncio.Queue[Utterance] = asyncio.Queue()
        """The caller's utterances as they start, for the recogniser."""
        self._turn_end: TurnEnd | None = None
        self._decisions: set[asyncio.Task[None]] = set()
        self._acks = 0
        self._acked = False
        """An acknowledgement was played in the turn in progress."""
        self._interrupted = False
        """The caller barged in on an acknowledgement of the turn in progress."""

    # --- the script ------------------------------------------------------------------------------
    async def run(self, call: Call) -> None:
        store = self.deps.store
        caller = presented_number(call.info.caller_number)
        try:
            self.call_id = await store.open_call(channel_id=call.channel_id, did=call.info.did,
                                                 caller_id=caller or "", dialplan=self.plan.file,
                                                 trade=self.plan.trade.trade, business=self.plan.business)
        except Exception:
            if store.failing is None:
                raise
            # The store cannot be written: the greeting, then a voice message kept beside its caller's number.
            call.trace.mark("engine_failed")
            taker = MessageTaker(self.deps, self.plan, 0)
            await taker.run(call, intro=taker.intro_text())
            return
        store.set_stage(self.call_id, CallStage.GREETING)
        outbox = self.deps.outbox
        call.at_end(lambda c: store.end_call(self.call_id, str(c.outcome), c.trace.as_dict(),
                                             then=outbox.after_call(self.plan, self.call_id))
                    .add_done_callback(lambda _f: outbox.poke()))
        taker = MessageTaker(self.deps, self.plan, self.call_id)
        if self.deps.transcriber is None or self.plan.mode is DialplanMode.MESSAGE:
            await taker.run(call, intro=taker.intro_text())
            return
        await self._converse(call, caller, taker)

    async def _converse(self, call: Call, caller: str | None, taker: MessageTaker) -> None:
        assert self.deps.transcriber is not None and call.media is not None
        store = self.deps.store
        now = datetime.now(self.plan.timezone)
        agenda = CallAgenda(self.plan, self.call_id, store, self.deps.calendars, now)
        agenda.start()  # the calendar is read while the greeting plays
        call.at_end(lambda _c: agenda.release())
        conv = Conversation(self.plan, now, caller, extractor=self.deps.extractor, on_field=self._on_field,
                            agenda=agenda, upcoming=self._upcoming(caller, now))
        # A recogniser takes ~100 ms to create (Kaldi's decoder state): made in a worker thread while
        # the greeting plays, never on the event loop, where it delayed the greeting and every other
        # call's frames. What the caller says meanwhile waits in its utterance.
        if self.deps.timing.recogniser_setup is RecogniserSetup.BLOCKING:  # make bench's "before" only
            asr: asyncio.Future[AsrSession] = asyncio.get_running_loop().create_future()
            asr.set_result(self.deps.transcriber.session(call.media.rate))
        else:
            asr = asyncio.ensure_future(asyncio.to_thread(self.deps.transcriber.session, call.media.rate))
        media = call.media
        self._turn_end = TurnEnd(conv, media.end_turn, self.deps.turns, call.trace.mark,
                                 join_s=media.settings.vad.hangover_ms / 1000)
        media.on_utterance = self._utterances.put_nowait
        feeder = asyncio.create_task(self._feed_asr(asr), name=f"asr-{call.tag}")
        try:
            opening = conv.start()
            while opening:
                await self._talk(call, conv, opening)
                await self._check_store(flush=True)
                self._save_outcome(conv)
                opening = await self._act(call, conv, taker)
        except StageError as exc:
            call.trace.mark("engine_failed")
            log.warning("call %s: %s %s (%s): taking a voice message", call.tag, exc.stage,
                        "timed out" if exc.timed_out else "failed", type(exc).__name__)
            store.add_action(self.call_id, "engine", exc.stage, "failed", type(exc).__name__)
            conv.finish()
            self._save_outcome(conv)
            await taker.run(call, intro=taker.engine_failed_text())
        finally:
            feeder.cancel()
            asr.add_done_callback(_close_recogniser)
            for decision in self._decisions:
                decision.cancel()
            if call.media is not None:
                call.media.on_utterance = None
            end = self._turn_end
            if end is not None and end.counts:
                ends = end.counts
                log.info("call %s: turn ends decided by the words %d, by the sound %d, left to the pause %d, "
                         "too late %d (decisions took at most %.0f ms)", call.tag, ends["words"], ends["sound"],
                         ends["wait"], ends["late"], max(end.cost_ms, default=0.0))

    async def _talk(self, call: Call, conv: Conversation, opening: str) -> None:
        """Say `opening`, then turn after turn until the conversation has decided."""
        assert call.media is not None
        join_s = call.media.settings.vad.hangover_ms / 1000
        ours = await self._said(call, opening, ack_by=None)
        self.deps.store.set_stage(self.call_id, CallStage.LISTENING)
        last: Utterance | None = None
        while not conv.done:
            await self._check_store(flush=True)
            utterance = await call.listen(self.deps.timing.first_turn_wait_s)
            heard = Heard.TURN
            if utterance is not None:
                early = last.ended.ended_at if last is not None and last.ended.early else None
                heard = heard_over(utterance.started_at, utterance.ended.ended_at, early, ours, join_s)
            if heard is Heard.ECHO:
                call.trace.mark("echo_ignored")
                continue  # begun and ended while we spoke, without interrupting: the line's echo
            if heard is Heard.CONTINUES:
                call.trace.mark("turn_goes_on")
            self._acked, self._interrupted = False, False
            reply = await self._turn(call, conv, utterance, heard is Heard.CONTINUES)
            last = utterance
            await self._check_store(flush=False)
            ack_by = None
            if utterance is not None and not self._acked and self.deps.timing.pipeline is Pipeline.STREAMING:
                ack_by = self.deps.timing.ack_by(utterance.ended.ended_at, utterance.ended.decided_at)
            ours = await self._said(call, reply, ack_by=ack_by)

    async def _said(self, call: Call, text: str, ack_by: float | None) -> OurSpeech:
        """`_say`, and what the caller heard of it for the next utterance: when it began, when it
        ended, and whether they interrupted it or the acknowledgement of this turn."""
        began = time.monotonic()
        played = await self._say(call, text, ack_by=ack_by) and not self._interrupted
        return OurSpeech(began, time.monotonic() if played else None, not played)

    async def _act(self, call: Call, conv: Conversation, taker: MessageTaker) -> str:
        """Carry out what the conversation decided; what to say next if it goes on, else ""."""
        store = self.deps.store
        if conv.outcome.action is Action.TRANSFER:
            return await TransferFlow(self.deps, self.plan, self.call_id, conv).run(call, taker)
        apply_booking(store, self.deps.outbox, self.plan, self.call_id, conv.outcome)
        return ""

    async def _check_store(self, *, flush: bool) -> None:
        """A store that cannot be written (full disk, read-only) ends the conversation: nothing the
        caller says would be kept, so their voice message is taken instead (in the messages folder).
        `flush`: first wait for the writes queued so far (a millisecond between turns)."""
        store = self.deps.store
        if flush:
            with contextlib.suppress(Exception):  # what fails is in store.failing
                await store.run(_nothing)
        failing = store.failing
        if failing is not None:
            raise StoreUnwritable(f"the store cannot be written ({failing})")

    def _upcoming(self, caller: str | None, now: datetime) -> Upcoming | None:
        """The caller's next booking with this business, if they have one (a returning caller)."""
        if not caller:
            return None
        row = self.deps.store.upcoming_booking(caller, self.plan.file, now.timestamp())
        if row is None:
            return None
        tz = self.plan.timezone
        return Upcoming(row["call_id"], Slot(datetime.fromtimestamp(row["booking_start"], tz),
                                             datetime.fromtimestamp(row["booking_end"], tz)),
                        row["name"], row["address"], row["problem"])

    def _on_field(self, name: str, value: str) -> None:
        """Each field the dialogue understands is committed at once (queued to the store's writer)."""
        self.deps.store.set_lead(self.call_id, **{name: value})

    def _save_outcome(self, conv: Conversation) -> None:
        status = {Action.BOOKING: LeadStatus.BOOKED, Action.MESSAGE: LeadStatus.MESSAGE,
                  Action.INFO: LeadStatus.INFO, Action.TRANSFER: LeadStatus.NEW, Action.CANCEL: LeadStatus.INFO}
        if conv.outcome.moves is not None:
            status[Action.BOOKING] = LeadStatus.INFO  # the booking stays the first call's lead
        action = conv.outcome.action
        self.deps.store.set_lead(self.call_id, urgency=conv.urgency, action=action,
                                 status=status[action] if action else LeadStatus.NEW, message=conv.lead.message)

    # --- one turn --------------------------------------------------------------------------------------
    async def _turn(self, call: Call, conv: Conversation, utterance: Utterance | None, goes_on: bool = False) -> str:
        """What the caller said (empty for silence) through the dialogue (`goes_on`: the rest of the
        last turn, read with it); an acknowledgement plays if the reply is not ready within the
        dead-air budget."""
        if utterance is None:
            return await conv.turn("")
        # decided_at is the end of the last frame's audio, a frame after its arrival: never later than now.
        decided_at = utterance.ended.decided_at
        call.trace.mark("end_of_utterance", min(decided_at, time.monotonic()))
        work = asyncio.ensure_future(self._understand(call, conv, utterance, goes_on))
        if self.deps.timing.pipeline is Pipeline.NAIVE:
            return await work  # the baseline: no acknowledgement covers a slow reply
        budget = self.deps.timing.ack_by(utterance.ended.ended_at, decided_at) - time.monotonic()
        if self.deps.timing.ack_early and utterance.unread * FRAME_S > budget:
            call.trace.mark("ack_early")  # the recogniser is this far behind: its text comes after the budget
            budget = 0.0
        done, _ = await asyncio.wait({work}, timeout=max(0.0, budget))
        if not done:
            await self._acknowledge(call)
        return await work

    async def _acknowledge(self, call: Call) -> None:
        call.trace.mark("ack")
        ack = ACKNOWLEDGEMENTS[self._acks % len(ACKNOWLEDGEMENTS)]
        self._acks += 1
        self._acked = True
        if not await call.say(self.deps.book.fixed(ack)):  # rendered before calls (phrases.first_texts)
            self._interrupted = True

    async def _understand(self, call: Call, conv: Conversation, utterance: Utterance, goes_on: bool) -> str:
        text = await self._final_text(utterance)
        call.trace.mark("asr_final")
        self.deps.store.add_turn(self.call_id, Who.CALLER, text)
        reply = await conv.turn(text, continues=goes_on)
        call.trace.mark("policy_done")
        return reply

    async def _say(self, call: Call, text: str, ack_by: float | None = None) -> bool:
        """Speak `text`, stored as the agent's turn; False if the caller interrupted it. With `ack_by`
        (monotonic s), an acknowledgement plays first if the reply's first audio is not ready by then:
        the dead-air budget covers the synthesis too, not only the understanding."""
        if not text:
            return True
        self.deps.store.add_turn(self.call_id, Who.AGENT, text)
        frames: AsyncIterator[AudioFrame] = self._frames(call, text)
        if ack_by is not None:
            frames = await self._covered(call, frames, ack_by, text)
        played = await call.say(frames)
        if not played:
            self.deps.store.mark_last_agent_turn_interrupted(self.call_id)
        return played

    async def _covered(self, call: Call, frames: AsyncIterator[AudioFrame], ack_by: float,
                       text: str) -> AsyncIterator[AudioFrame]:
        """`frames` (of `text`), after an acknowledgement if their first one is not ready by `ack_by`;
        at once if the voice's pace says it will not be (`call.ack_early`): no silence is waited out
        that is known to end in "D'accord." anyway."""
        first = asyncio.ensure_future(anext(frames, None))
        budget = ack_by - time.monotonic()
        expected = self.deps.book.first_audio_s(text) if self.deps.timing.ack_early else None
        if expected is not None and expected > budget:
            call.trace.mark("ack_early")
            budget = 0.0
        done, _ = await asyncio.wait({first}, timeout=max(0.0, budget))
        if not done:
            await self._acknowledge(call)
        head = await first

        async def chained() -> AsyncIterator[AudioFrame]:
            if head is not None:
                yield head
            async for frame in frames:
                yield frame

        return chained()

    async def _frames(self, call: Call, text: str) -> AsyncIterator[AudioFrame]:
        """The reply's frames; a synthesis that gives nothing for `engine_timeout_s` is a TtsError."""
        first = True
        book = self.deps.book
        frames = book.speak_whole(text) if self.deps.timing.pipeline is Pipeline.NAIVE else book.speak(text)
        limit = self.deps.timing.engine_timeout_s
        while True:
            try:
                frame = await asyncio.wait_for(anext(frames), limit)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise TtsError(f"no audio from the voice within {limit:.1f} s", timed_out=True) from None
            if first:
                call.trace.mark("tts_first_audio")
                first = False
            yield frame

    # --- speech recognition, fed as the caller speaks ------------------------------------------------
    async def _feed_asr(self, made: asyncio.Future[AsrSession]) -> None:
        """Each utterance's frames to the recogniser as they come, its pauses to the end-of-turn
        decision, and its text to the utterance once it ends. A recogniser that fails, whatever it
        raises, fails every utterance after it as an AsrError (the call turns into a voice message):
        a dead feeder would leave the caller waiting for ever."""
        naive = self.deps.timing.pipeline is Pipeline.NAIVE
        failed: StageError | None = None
        try:
            asr = await made
        except Exception as exc:
            failed = _as_asr_error(exc)
        while True:
            utterance = await self._utterances.get()
            held: list[AudioFrame] = []
            try:
                async for item in utterance.stream():
                    if failed is not None:
                        continue  # the utterance is drained; its text is the failure
                    if isinstance(item, Paused):
                        if self._turn_end is not None and not naive:
                            # Every frame before the pause is fed: the words so far are the recogniser's.
                            self._decisions.add(task := asyncio.create_task(self._turn_end.decide(item)))
                            task.add_done_callback(self._decisions.discard)
                    elif naive:
                        held.append(item)  # the baseline: recognition starts once the utterance has ended
                    elif self._turn_end is not None:
                        self._turn_end.heard(await asr.feed(item))
                    else:
                        await asr.feed(item)
                if self._turn_end is not None:
                    self._turn_end.reset()
                    self._turn_end.mark("asr_fed")
                if failed is not None:
                    raise failed
                if utterance.discarded:
                    await asr.discard()
                    continue
                for frame in held:
                    await asr.feed(frame)
                utterance.heard((await asr.finish()).text)
            except Exception as exc:
                if failed is None:
                    failed = _as_asr_error(exc)
                utterance.failed(failed)

    async def _final_text(self, utterance: Utterance) -> str:
        limit = self.deps.timing.engine_timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(utterance.text), limit)
        except TimeoutError:
            raise AsrError(f"no transcript within {limit:.1f} s of the end of the utterance", timed_out=True) from None


def _nothing(_conn: object) -> None:
    """A write that writes nothing: done once every write queued before it is."""


def _close_recogniser(made: asyncio.Future[AsrSession]) -> None:
    """The call's recogniser session is over (the engine may keep its recogniser for a next call)."""
    if not made.cancelled() and made.exception() is None:
        made.result().close()


def _as_asr_error(exc: Exception) -> StageError:
    """What a recogniser raised, as the StageError that turns the call into a voice message."""
    return exc if isinstance(exc, StageError) else AsrError(f"{type(exc).__name__}: {exc}")


def presented_number(number: str) -> str | None:
    """The presented number in E.164; None when withheld or not a valid phone number."""
    from agent.dialogue.text import caller_id_number

    if not number or number.lower() in ("anonymous", "unknown", "restricted", "private"):
        return None
    return caller_id_number(number)
