"""Issue 22 item 5: ready at start with a cold phrase cache. Only what every call starts with (the
greeting, its question), the acknowledgements, the voice-message prompts and Asterisk's fallback
prompt are rendered before the service takes calls (the understanding's tables load meanwhile on a
second thread); every other fixed sentence is rendered in the background, and one not yet rendered
is synthesised when said."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agent.app import build
from agent.config import load_config
from agent.dialogue import phrases
from agent.tts.base import sentences
from agent.tts.espeak_engine import EspeakEngine
from agent.tts.prompt_files import is_rendered

ARI_SECRET = "s3cret-Horse-Battery-42"


def _config(tmp_path: Path) -> Path:
    secret = tmp_path / "ari-password"
    secret.write_text(ARI_SECRET + "\n")
    secret.chmod(0o600)
    config = tmp_path / "standardiste.yaml"
    config.write_text(f"ari:\n  url: http://127.0.0.1:9\n  password_file: {secret}\n"
                      f"paths:\n  store: {tmp_path / 'store.db'}\n  prompts: {tmp_path / 'prompts'}\n"
                      f"  messages: {tmp_path / 'messages'}\n  cache: {tmp_path / 'cold-cache'}\n"
                      f"dialplans:\n  default: plombier\n")
    return config


def test_a_cold_start_renders_the_first_seconds_and_leaves_the_rest_to_the_background(tmp_path: Path) -> None:
    scripted = tmp_path / "asr.json"
    scripted.write_text('{"utterances": []}')
    started = time.monotonic()
    service = build(load_config(_config(tmp_path)), scripted_asr=scripted)
    built_s = time.monotonic() - started
    try:
        book = service.deps.book
        plan = service.config.dialplans.all()[0]
        held = set(book._frames)
        first = {s for t in phrases.first_texts(plan) for s in sentences(t)}
        every = {s for t in phrases.fixed_texts(plan) for s in sentences(t)}
        assert first <= held  # the greeting, its question, the acknowledgements, the voice message: before any call
        print(f"\ncold start: built in {built_s:.1f} s with {len(held)} of {len(every)} sentences rendered")
        assert len(held) < len(every), "every sentence was rendered before the service could take a call"
        # A sentence not rendered yet is synthesised when said (nothing waits for the background).
        missing = next(s for s in sorted(every - held) if s not in book._frames)

        async def say() -> int:
            return sum([1 async for _ in book.speak(missing)])

        assert asyncio.run(say()) > 10
        # Asterisk's own voice message prompt, before any call: on a first start, espeak-ng's at once;
        # the voice renders it again in the background, after the phrases.
        prompts = service.config.paths.prompts
        assert (prompts / "fallback.wav").exists()
        assert is_rendered(phrases.FALLBACK, prompts, name="fallback", engine=EspeakEngine())
    finally:
        assert service.background.stop()  # as the service does when it stops (agent/background.py)
        service.deps.store.close()


def test_a_service_stopped_during_its_background_work_exits_cleanly(tmp_path: Path) -> None:
    """`standardiste run` stopped seconds after a cold start, while Piper renders the phrases and Vosk
    warms its recognisers in the background: the jobs stop after their step and the process exits
    as it should (here 1: no Asterisk was ever reachable). Left running at the exit, their C++ code
    aborted the process (SIGABRT, exit 134; systemd logs a crash)."""
    import os
    import signal
    import subprocess
    import sys

    scripted = tmp_path / "asr.json"
    scripted.write_text('{"utterances": []}')
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(_config(tmp_path)),
                                 "--scripted-asr", str(scripted)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 60
            while "Asterisk unreachable" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.1)
            assert any(t in log.read_text() for t in ("phrases ready", "Asterisk unreachable"))
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = proc.wait(30)
        finally:
            proc.kill()
    said = log.read_text()
    assert "terminate called" not in said and code == 1, (code, said[-2000:])
    assert "stopped before Asterisk became reachable" in said
    print(f"\nstopped in {time.monotonic() - started:.1f} s")


def test_the_fallback_prompt_is_quick_on_a_first_start_and_the_voice_s_once_rendered(tmp_path: Path) -> None:
    from agent.engines import load_tts
    from agent.session.phrasebook import PhraseBook

    voice = load_tts(Path("/nonexistent-models-dir"))[0]
    book = PhraseBook(voice, tmp_path / "cache", 8000)
    prompts = tmp_path / "prompts"
    started = time.monotonic()
    assert book.render_fallback(prompts, quick=True) is True  # nothing rendered by this voice yet
    quick_s = time.monotonic() - started
    assert is_rendered(phrases.FALLBACK, prompts, name="fallback", engine=EspeakEngine())
    started = time.monotonic()
    assert book.render_fallback(prompts) is False  # what the background does next
    voice_s = time.monotonic() - started
    print(f"\nfallback prompt: espeak-ng {quick_s * 1000:.0f} ms, the voice {voice_s * 1000:.0f} ms")
    assert is_rendered(phrases.FALLBACK, prompts, name="fallback", engine=voice)
    assert book.render_fallback(prompts, quick=True) is False  # the next start keeps the voice's
    assert is_rendered(phrases.FALLBACK, prompts, name="fallback", engine=voice)
