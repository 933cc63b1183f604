#!/usr/bin/env python3
"""`make bench-engines`: load time, real-time factor and first-output latency of each speech engine
on this machine, with the models in --models (production) or the packaged stand-ins. Prints figures;
asserts nothing."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from agent.audio.frames import split_frames
from agent.engines import load_asr, load_llm, load_tts
from agent.tts.base import stream_frames
from agent.tts.espeak_engine import EspeakEngine, synthesize_espeak
from agent.tts.prompt_files import to_rate

TTS_TEXT = ("Bonjour, vous êtes bien chez Plomberie Martin. Je suis l'assistant automatique de l'entreprise. "
            "Pouvez-vous me donner votre nom et votre adresse ?")
KEPT_TEXTS = ["J'ai une fuite d'eau sous l'évier de la cuisine, ça coule partout depuis une heure.",
              "Sophie Lambert.", "8 rue des Lilas à Cagnes-sur-Mer.", "Oui c'est ça."]
LLM_TEXTS = ["Marie Dubois, 15 rue Victor Hugo à Nice.",
             "Bonjour, je suis Paul Girard, j'habite 8 place Bellecour à Lyon, j'ai une fuite sous l'évier.",
             "Oui c'est Madame Lefèvre, 3 allée des Tilleuls à Rennes, le tableau électrique a disjoncté."]


def row(engine: str, model: str, load_s: float, rtf: float | None, first_ms: float, extra: str = "") -> None:
    rtf_txt = f"{rtf:6.3f}" if rtf is not None else "     -"
    print(f"{engine:5} {model[:44]:44} load {load_s:6.2f} s   RTF {rtf_txt}   first output {first_ms:7.1f} ms  {extra}")


async def bench_tts(models: Path) -> None:
    for engine, name in [(load_tts(models)[0], None), (EspeakEngine(), "espeak-ng (fallback)")]:
        started = time.monotonic()
        first = None
        frames = 0
        async for _ in stream_frames(engine, TTS_TEXT, 8000):
            first = first or time.monotonic() - started
            frames += 1
        total = time.monotonic() - started
        load_s = getattr(getattr(engine, "engines", [engine])[0], "load_seconds", 0.0)
        row("TTS", name or engine.name, load_s, total / (frames * 0.02), (first or 0) * 1000,
            f"({frames * 0.02:.1f} s of speech at 8 kHz)")


async def bench_asr(models: Path) -> None:
    engine, note = load_asr(models)
    lang = "fr" if "French" in note else "ko"
    text = "Bonjour, j'ai une fuite d'eau dans la cuisine." if lang == "fr" else "안녕하세요 감사합니다"
    samples, rate = synthesize_espeak(text, voice=lang)
    audio = np.concatenate([np.zeros(4000, np.int16), to_rate(samples, rate, 8000), np.zeros(8000, np.int16)])
    session = engine.session(8000)
    started = time.monotonic()
    first = None
    for frame in split_frames(audio, 8000):
        if await session.feed(frame) is not None and first is None:
            first = time.monotonic() - started
    await session.finish()
    total = time.monotonic() - started
    row("ASR", engine.name, getattr(engine, "load_seconds", 0.0), total / (len(audio) / 8000), (first or 0) * 1000,
        f"({len(audio) / 8000:.1f} s of 8 kHz audio, fed as 20 ms frames)")


async def bench_asr_kept(models: Path) -> None:
    """The same French utterances (espeak-ng) through a new recogniser, then through it again once
    kept (agent/asr/vosk_engine.py): CPU of the feeding and time of each final result."""
    engine, _ = load_asr(models)
    said = [to_rate(*synthesize_espeak(t, voice="fr"), 8000) for t in KEPT_TEXTS]

    async def one_call() -> tuple[float, list[float]]:
        session = engine.session(8000)
        cpu, finals = 0.0, []
        for audio in said:
            began = time.thread_time() + time.process_time()
            for frame in split_frames(audio, 8000):
                await session.feed(frame)
            cpu += time.thread_time() + time.process_time() - began
            started = time.monotonic()
            await session.finish()
            finals.append(time.monotonic() - started)
        session.close()
        await asyncio.sleep(0.2)  # the release runs on a recognition thread
        return cpu, finals

    speech_s = sum(len(a) for a in said) / 8000
    for label in ("new recogniser", "kept recogniser", "kept recogniser"):
        began = time.process_time()
        _, finals = await one_call()
        cpu = time.process_time() - began
        print(f"ASR   {label:16} {speech_s:4.1f} s of speech: {cpu:5.2f} s of CPU (RTF {cpu / speech_s:.2f}), "
              f"final results {', '.join(f'{f * 1000:.0f}' for f in finals)} ms")


def _neighbour(stop: threading.Event, done: list[int]) -> None:
    """CPU work outside the GIL (numpy), counted in steps, until `stop`."""
    a = np.random.default_rng(1).random((200, 200))
    while not stop.is_set():
        a @ a
        done[0] += 1


def bench_tts_neighbour(models: Path) -> None:
    """Piper's sentences with a CPU-bound thread beside it (what the recogniser is during a call),
    with onnxruntime's threads spinning (its default) and not (ours), and the work that thread got."""
    import onnxruntime

    engine = load_tts(models)[0]
    piper = getattr(engine, "engines", [engine])[0]
    voice = getattr(piper, "_voice", None)
    if voice is None:
        print("TTS   neighbour test: no Piper voice")
        return
    ours = voice.session
    for label, spin in (("threads spinning (default)", "1"), ("threads not spinning (ours)", "0")):
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        voice.session = onnxruntime.InferenceSession(ours._model_path, sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        done = [0]
        firsts = []
        for contended in (False, True):
            stop = threading.Event()
            side = threading.Thread(target=_neighbour, args=(stop, done)) if contended else None
            if side is not None:
                side.start()
            began = time.monotonic()
            for text in KEPT_TEXTS * 3:
                started = time.monotonic()
                list(voice.synthesize(text))
                firsts.append((contended, time.monotonic() - started))
            stop.set()
            if side is not None:
                side.join()
                rate = done[0] / (time.monotonic() - began)
        alone = statistics.median(f for c, f in firsts if not c)
        beside = statistics.median(f for c, f in firsts if c)
        print(f"TTS   {label:27} a sentence p50 {alone * 1000:.0f} ms alone, {beside * 1000:.0f} ms beside a "
              f"busy thread, which did {rate:.0f} steps/s meanwhile")
    voice.session = ours


async def bench_llm(models: Path) -> None:
    engine, _ = load_llm(models)
    times, first = [], []
    for text in LLM_TEXTS:
        r = await engine.extract(text, ["name"], 10.0)
        first.append(r.elapsed_s)
        r = await engine.extract(text, ["name", "address", "problem"], 10.0)
        times.append(r.elapsed_s)
    row("LLM", engine.name, getattr(engine, "load_seconds", 0.0), None, statistics.median(first) * 1000,
        f"(first field; three fields {statistics.median(times):.2f} s median)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="models", type=Path)
    args = ap.parse_args()
    print(f"Speech engines on this machine (models: {args.models}; stand-ins when absent)")
    asyncio.run(bench_tts(args.models))
    asyncio.run(bench_asr(args.models))
    asyncio.run(bench_asr_kept(args.models))
    bench_tts_neighbour(args.models)
    try:
        asyncio.run(bench_llm(args.models))
    except ImportError as exc:
        print(f"LLM   not measured: {exc}")


if __name__ == "__main__":
    main()
