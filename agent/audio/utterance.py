"""One turn of the caller's audio, as one object.

The media makes an `Utterance` when the caller starts speaking (with the audio just before, the
word's onset) and hands it to whoever listens for utterances (the live session's recogniser); its
frames and its pauses are delivered in order as they arrive (`stream`), then its end or its discard
(a cough). Its consumer sets its text. The turn that waits for the caller (`Call.listen`) gets the
same object once it has ended, and awaits that text: the recogniser and the turn meet here, not in
a table keyed by timestamps.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from agent.audio.frames import AudioFrame
from agent.audio.vad import Paused, UtteranceEnded

_DONE = object()


class Utterance:
    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        """Arrival time of its first voiced frame, monotonic s."""
        self.end: UtteranceEnded | None = None
        """How it ended (its frames, when, when it was decided); None while it goes on or if discarded."""
        self.discarded = False
        self._items: asyncio.Queue[AudioFrame | Paused | object] = asyncio.Queue()
        self._text: asyncio.Future[str] | None = None

    # --- the media's side ------------------------------------------------------------------------
    def frame(self, frame: AudioFrame) -> None:
        self._items.put_nowait(frame)

    def pause(self, paused: Paused) -> None:
        self._items.put_nowait(paused)

    def finish(self, end: UtteranceEnded) -> None:
        self.end = end
        self._items.put_nowait(_DONE)

    def discard(self) -> None:
        self.discarded = True
        self._items.put_nowait(_DONE)

    # --- the consumer's side ---------------------------------------------------------------------
    async def stream(self) -> AsyncIterator[AudioFrame | Paused]:
        """Its frames and pauses as they arrive, until it ends or is discarded (then see `end`,
        `discarded`)."""
        while True:
            item = await self._items.get()
            if item is _DONE:
                return
            assert isinstance(item, (AudioFrame, Paused))
            yield item

    @property
    def unread(self) -> int:
        """Frames and pauses delivered by the media and not yet taken by its consumer: how far the
        recogniser is behind the caller."""
        return self._items.qsize()

    @property
    def text(self) -> asyncio.Future[str]:
        """What was said, set by the consumer (or the recogniser's error)."""
        if self._text is None:
            self._text = asyncio.get_running_loop().create_future()
        return self._text

    def heard(self, text: str) -> None:
        if not self.text.done():
            self.text.set_result(text)

    def failed(self, exc: BaseException) -> None:
        if not self.text.done():
            self.text.set_exception(exc)
            self.text.exception()  # the turn that awaits it still gets it; no "never retrieved" log

    # --- the end, for the turn -------------------------------------------------------------------
    @property
    def ended(self) -> UtteranceEnded:
        assert self.end is not None, "the utterance has not ended"
        return self.end


class EndedUtterances:
    """The caller's ended utterances, oldest first, waiting for the turn that listens. Waiting never
    takes one: `take` does, synchronously. (An `asyncio.Queue.get()` in a task, under a timeout,
    could take an utterance that ended at the very moment the timeout fired and lose it with the
    cancelled task: the caller's answer was gone and they were asked again.)"""

    def __init__(self) -> None:
        self._items: deque[Utterance] = deque()
        self._ready = asyncio.Event()

    def put(self, utterance: Utterance) -> None:
        self._items.append(utterance)
        self._ready.set()

    def take(self) -> Utterance | None:
        """The oldest ended utterance, or None."""
        if not self._items:
            return None
        utterance = self._items.popleft()
        if not self._items:
            self._ready.clear()
        return utterance

    async def wait(self) -> None:
        """Until there is one to take (cancelling this loses nothing)."""
        await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)
