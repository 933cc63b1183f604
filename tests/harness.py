"""The real Controller inside the test process, on its own asyncio loop thread, running a test's
conversation script, so a test can look at a call's media, trace and counters after it ends.
(The process-level tests run `standardiste run` instead; this is for looking inside.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from agent.audio.frames import AudioFrame
from agent.telephony.ari import AriClient
from agent.telephony.call import Call, CallPrompts, CallSettings, Script
from agent.telephony.controller import Controller
from agent.telephony.devasterisk import ARI_USER, DevAsterisk
from agent.telephony.media import MediaSettings


class InProcessAgent:
    def __init__(self, ast: DevAsterisk, script: Script, media: MediaSettings | None = None,
                 prompts: CallPrompts | None = None) -> None:
        self.ast = ast
        self.media = media or MediaSettings()
        silence = [AudioFrame.silence(self.media.rate)] * 10
        self.prompts = prompts or CallPrompts(greeting=silence, goodbye=silence)
        self.script = script
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agent-loop", daemon=True)
        self.controller: Controller | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def run(self, coro: Awaitable[Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call_soon(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()
        return self.run(wrapper())

    def start(self) -> InProcessAgent:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        ari = AriClient(self.ast.ari_url, ARI_USER, self.ast.ari_password, "standardiste")
        settings = CallSettings(media=self.media, messages_dir=self.ast.messages)
        self.controller = Controller(ari, self.prompts, settings, self.script)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.controller.run(self._stop))
        await asyncio.wait_for(self.controller.ready.wait(), 20)

    def finished_calls(self) -> list[Call]:
        assert self.controller is not None
        return self.call_soon(lambda: list(self.controller.finished))  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._stop is not None and self._task is not None and self.controller is not None
            self._stop.set()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            await self.controller.ari.close()
        if self.thread.is_alive():
            self.run(_stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
