"""The real Controller inside the test process, on its own asyncio loop thread, so a test can look at
a call's media, trace and counters while it runs and after it ends. Either with a test's own
script (the call-audio tests), or the whole service as `standardiste run` assembles it (app.build)
with a scripted recogniser. (The process-level tests run `standardiste run` instead.)"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.app import Service, build, serve
from agent.asr.base import Transcriber
from agent.config import load_config
from agent.devtools.asterisk import ARI_USER, DevAsterisk
from agent.telephony.ari import AriClient
from agent.telephony.call import Call, Script
from agent.telephony.controller import Controller
from agent.telephony.media import MediaSettings


class InProcessAgent:
    def __init__(self, ast: DevAsterisk, script: Script | None = None, media: MediaSettings | None = None, *,
                 config: Path | None = None, scripted_asr: Path | None = None,
                 transcriber: Transcriber | None = None) -> None:
        self.ast = ast
        self.media = media or MediaSettings()
        self.script = script
        self.config_path = config
        self.scripted_asr = scripted_asr
        self.transcriber = transcriber
        self.service: Service | None = None
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
        # What earlier tests left in this process (the dialogue's tables, engines) is frozen out of the
        # garbage collector, as the service does at start (app.build): a full collection over it would
        # pause the RTP pacing of the test's calls for tens of milliseconds.
        gc.collect()
        gc.freeze()
        if self.config_path is not None:
            self.service = build(load_config(self.config_path), scripted_asr=self.scripted_asr,
                                 transcriber=self.transcriber)
        self.thread.start()
        self.run(self._start(), timeout=60)
        return self

    async def _start(self) -> None:
        self._stop = asyncio.Event()
        if self.service is not None:
            self.controller = self.service.controller
            self._task = asyncio.create_task(serve(self.service, self._stop, handle_signals=False))
        else:
            assert self.script is not None
            script = self.script
            ari = AriClient(self.ast.ari_url, ARI_USER, self.ast.ari_password, "standardiste")
            self.controller = Controller(ari, self.media, lambda info: script)
            self._task = asyncio.create_task(self.controller.run(self._stop))
        await asyncio.wait_for(self.controller.ready.wait(), 20)

    def finished_calls(self) -> list[Call]:
        assert self.controller is not None
        return self.call_soon(lambda: list(self.controller.finished))  # type: ignore[union-attr]

    def live_calls(self) -> list[Call]:
        assert self.controller is not None
        return self.call_soon(lambda: self.controller.calls)  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._stop is not None and self._task is not None and self.controller is not None
            self._stop.set()
            if self.service is None:
                self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            if self.service is None:
                await self.controller.ari.close()
        if self.thread.is_alive():
            self.run(_stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
