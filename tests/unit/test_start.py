"""Issue 22 item 5: ready at start with a cold phrase cache. Only what every call starts with (the
greeting, its question), the acknowledgements, the voice-message prompts and Asterisk's fallback
prompt are rendered before the service takes calls (the understanding's tables load meanwhile on a
second thread); every other fixed sentence is rendered in the background, and one not yet rendered
is synthesised when said."""

from __future__ import annotations

import asyncio
import threading
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
        service.deps.store.close()
        # The background's threads run Piper and Vosk: left running at the interpreter's exit, their
        # C++ code aborted the process (exit 134) when this file ran alone.
        for thread in threading.enumerate():
            if thread.name in ("phrases", "asr-warm-up"):
                thread.join(120)


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
