"""The real speech engines on the models that packages ship (no French model is shipped by any
registry: the ASR test speaks Korean to the Korean model, the TTS stand-in is an English voice
speaking French phonemes, the LLM is Gemma 3 270M)."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from agent.asr.base import ASR_NICE, AsrSettings, Transcript
from agent.asr.vosk_engine import VoskEngine
from agent.audio.frames import split_frames
from agent.engines import load_asr, load_llm, load_tts
from agent.llm.base import Extraction, within_budget
from agent.tts.base import CHUNK_MAX_CHARS, FallbackSynthesizer, TtsError, render, speech_chunks, stream_frames
from agent.tts.espeak_engine import EspeakEngine, synthesize_espeak
from agent.tts.prompt_files import to_rate

NO_MODELS = Path("/nonexistent-models-dir")  # production models absent: the stand-ins run
LLM_BUDGET_S = 3.0
"""The seed utterances are filled within this on 2 cores (measured ~0.4-0.9 s for three fields)."""


@pytest.fixture(scope="module")
def vosk_ko() -> VoskEngine:
    engine, note = load_asr(NO_MODELS)
    assert "STAND-IN Korean" in note
    assert isinstance(engine, VoskEngine)
    return engine


@pytest.fixture(scope="module")
def piper():  # type: ignore[no-untyped-def]
    engine, note = load_tts(NO_MODELS)
    assert "STAND-IN English Piper voice" in note
    return engine


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make venv`")
    engine, note = load_llm(NO_MODELS)
    assert "STAND-IN Gemma 3 270M" in note
    return engine


def korean_call_audio(text: str) -> np.ndarray:
    """Korean speech from espeak-ng, as the 8 kHz line delivers it, with silence around."""
    samples, rate = synthesize_espeak(text, voice="ko")
    x = to_rate(samples, rate, 8000)
    return np.concatenate([np.zeros(4000, np.int16), x, np.zeros(8000, np.int16)])


async def transcribe(engine: VoskEngine, audio: np.ndarray, phrases: list[str] | None) -> list[Transcript]:
    session = engine.session(8000, phrases)
    out = []
    for frame in split_frames(audio, 8000):
        tr = await session.feed(frame)
        if tr is not None:
            out.append(tr)
    out.append(await session.finish())
    return out


KOREAN_PHRASES = ["안녕하세요", "감사합니다", "네", "아니요", "하나", "둘", "셋"]
"""A yes/no/greeting phrase list. espeak-ng's Korean is robotic: 감사합니다 is not recognised from it
(measured), so the test uses the words that are."""


@pytest.mark.parametrize("said", ["안녕하세요", "아니요", "네"])
def test_vosk_recognises_streamed_8khz_speech_with_a_phrase_list(vosk_ko: VoskEngine, said: str) -> None:
    results = asyncio.run(transcribe(vosk_ko, korean_call_audio(said), KOREAN_PHRASES))
    assert results[-1].final and results[-1].text == said  # finish(): the whole utterance
    partials = [r for r in results if not r.final]
    assert partials, "no partial result while streaming"
    assert vosk_ko.rate == 16000  # the model wants 16 kHz: the session resampled the 8 kHz line


def test_one_vosk_session_recognises_utterance_after_utterance_on_the_8khz_line(vosk_ko: VoskEngine) -> None:
    """A call is many utterances on one session. The 8 kHz line is resampled for the 16 kHz model,
    and finishing an utterance must not end the resampler: the second utterance once raised
    "Input after last input" and the call waited for ever."""
    async def utterances() -> list[str]:
        session = vosk_ko.session(8000, KOREAN_PHRASES)
        out = []
        for said in ("안녕하세요", "아니요", "네"):
            for frame in split_frames(korean_call_audio(said), 8000):
                await session.feed(frame)
            out.append((await session.finish()).text)
        return out

    assert [t.split()[0] for t in asyncio.run(utterances())] == ["안녕하세요", "아니요", "네"]


def test_vosk_recognition_threads_follow_the_asr_settings(vosk_ko: VoskEngine) -> None:
    """`asr.threads` and `asr.nice`: the pool's size and its threads' priority, seen from inside them."""
    def seen() -> tuple[int, str]:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), threading.current_thread().name

    async def where_run() -> set[tuple[int, str]]:
        return set(await asyncio.gather(*(vosk_ko.run(seen) for _ in range(8))))

    try:
        vosk_ko.configure(AsrSettings(threads=1, nice=7))
        assert {n for n, _ in asyncio.run(where_run())} == {7}
        assert len({t for _, t in asyncio.run(where_run())}) == 1  # one thread
        vosk_ko.configure(AsrSettings(threads=2, nice=0))
        assert {n for n, _ in asyncio.run(where_run())} == {os.getpriority(os.PRIO_PROCESS, 0)}
    finally:
        vosk_ko.configure(AsrSettings())
    assert {n for n, _ in asyncio.run(where_run())} == {ASR_NICE}


def test_vosk_phrase_list_constrains_what_comes_out(vosk_ko: VoskEngine) -> None:
    results = asyncio.run(transcribe(vosk_ko, korean_call_audio("안녕하세요"), ["감사합니다", "아니요"]))
    words = results[-1].text.split()
    assert "안녕하세요" not in words
    assert all(w in ("감사합니다", "아니요") for w in words)


def test_what_vosk_finalises_within_an_utterance_is_kept_in_its_final_text(vosk_ko: VoskEngine) -> None:
    """Vosk ends a segment by itself at a long pause: the utterance's text is every segment, in order
    (a pause inside what the caller says must not lose its first half)."""
    pause = np.zeros(8000 * 2, np.int16)
    audio = np.concatenate([korean_call_audio("안녕하세요"), pause, korean_call_audio("네")])
    results = asyncio.run(transcribe(vosk_ko, audio, KOREAN_PHRASES))
    assert any(r.final for r in results[:-1]), "Vosk did not end a segment at the pause"
    words = results[-1].text.split()
    assert words[0] == "안녕하세요" and "네" in words[1:]


def test_piper_streams_french_as_8khz_frames(piper) -> None:  # type: ignore[no-untyped-def]
    text = ("Bonjour, vous êtes bien chez Plomberie Martin. Je suis l'assistant automatique de l'entreprise. "
            "Décrivez votre demande, elle sera enregistrée. Un artisan vous rappellera très vite.")

    async def run() -> tuple[list[float], float]:
        started = time.monotonic()
        stamps = []
        async for frame in stream_frames(piper, text, 8000):
            assert frame.rate == 8000 and len(frame.samples) == 160
            stamps.append(time.monotonic() - started)
        return stamps, time.monotonic() - started

    stamps, total = asyncio.run(run())
    whole, rate = render(piper, text)
    expected_s = len(whole) / rate
    streamed_s = len(stamps) * 0.02
    assert abs(streamed_s - expected_s) <= 0.1 * expected_s + 0.5  # sentence gaps differ slightly
    assert streamed_s > 6.0  # four sentences of speech
    # The first frame came out when the first sentence was ready, well before the whole text.
    assert stamps[0] < 0.5 * total, (stamps[0], total)


def test_a_reply_starts_with_its_first_sound_not_the_voice_s_lead_in(piper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Piper starts a sentence with 20-60 ms of silence (260 ms before "Quel" with the stand-in): dead
    air the caller heard before every reply. A reply streamed and a sentence from the book both start
    with sound in their first frame (5 ms of the lead-in kept); the book's loses only the lead-in of
    its file. (Piper's timing is random from one synthesis to the next: lengths are compared only
    to the same audio, and the stream's on a fixed voice below.)"""
    import wave

    from agent.audio.frames import LEAD_LEVEL
    from agent.session.phrasebook import PhraseBook

    text = "Quel est votre nom ?"

    async def streamed() -> list[np.ndarray]:
        return [frame.samples async for frame in stream_frames(piper, text, 8000)]

    book = PhraseBook(piper, tmp_path, 8000)
    book.prepare([text])
    held = [f.samples for f in book.fixed(text)]
    for frames in (asyncio.run(streamed()), held):
        first = np.abs(frames[0].astype(np.int32))
        assert first.max() >= LEAD_LEVEL and int(np.flatnonzero(first >= LEAD_LEVEL)[0]) <= 8000 * 0.006
    (path,) = tmp_path.glob("prompt-*.wav")
    with wave.open(str(path), "rb") as w:
        rendered = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    lead = int(np.flatnonzero(np.abs(rendered.astype(np.int32)) >= LEAD_LEVEL)[0])
    assert lead >= 8000 * 0.01, "the voice has no lead-in to trim: this test shows nothing"
    assert len(held) == -(-(len(rendered) - lead + 40) // 160)  # 40 samples: the 5 ms kept


class LeadInSynthesizer:
    """Fake voice: 100 ms of silence, then 0.5 s of tone, at 16 kHz."""

    name = "fake-lead-in"

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        yield np.concatenate([np.zeros(1600, np.int16), np.full(8000, 8000, np.int16)]), 16000


def test_a_streamed_reply_loses_its_lead_in_and_nothing_else() -> None:
    """100 ms of lead-in and 0.5 s of tone at 16 kHz: 0.5 s at 8 kHz, sound from the first frame to
    the last (the resampler's flush, its delay, was cut to one frame: 60-80 ms of every streamed
    reply's end were lost)."""
    async def run() -> list[float]:
        return [frame.rms() async for frame in stream_frames(LeadInSynthesizer(), "Bonjour.", 8000)]

    levels = asyncio.run(run())
    assert levels[0] > 1000 and len(levels) in (25, 26, 27), levels  # 0.5 s of tone, not 0.6 s


def test_piper_s_onnxruntime_threads_do_not_spin(piper) -> None:  # type: ignore[no-untyped-def]
    """A spinning thread pool busy-waits after each operator, taking the cores the recogniser and the
    event loop need (figures: scripts/bench_engines.py)."""
    options = piper.engines[0]._voice.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.inter_op_num_threads == 1


class FailingSynthesizer:
    """Fake: a primary voice that breaks (a corrupt model, onnxruntime error)."""

    name = "fake-broken"

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        raise RuntimeError("model file corrupt")
        yield  # pragma: no cover


def test_a_failing_voice_falls_back_to_espeak() -> None:
    engine = FallbackSynthesizer(FailingSynthesizer(), EspeakEngine())
    samples, rate = render(engine, "Je n'ai pas compris, pouvez-vous répéter ?")
    assert len(samples) / rate > 1.0


def test_a_failure_with_no_fallback_is_a_tts_error() -> None:
    async def run() -> None:
        async for _ in stream_frames(FailingSynthesizer(), "Bonjour.", 8000):
            pass

    with pytest.raises(TtsError, match="fake-broken: model file corrupt"):
        asyncio.run(run())


SEED = [
    ("Marie Dubois, 15 rue Victor Hugo à Nice.", "Marie Dubois", ["15 rue Victor Hugo", "Nice"]),
    ("Bonjour, je suis Paul Girard, j'habite 8 place Bellecour à Lyon, j'ai une fuite sous l'évier.",
     "Paul Girard", ["8 place Bellecour", "Lyon"]),
]


@pytest.mark.parametrize(("said", "name", "address_parts"), SEED)
def test_llm_fills_name_and_address_within_budget(llm, said: str, name: str,  # type: ignore[no-untyped-def]
                                                  address_parts: list[str]) -> None:
    result = asyncio.run(llm.extract(said, ["name", "address", "problem"], LLM_BUDGET_S))
    assert result.complete, result
    assert result.elapsed_s <= LLM_BUDGET_S
    assert result.fields["name"] == name
    assert all(part in (result.fields["address"] or "") for part in address_parts), result.fields


def test_llm_is_cut_off_at_its_budget(llm) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = asyncio.run(llm.extract("Marie Dubois, 15 rue Victor Hugo à Nice, le chauffe-eau ne marche plus.",
                                     ["name", "address", "problem", "phone"], 0.05))
    elapsed = time.monotonic() - started
    assert not result.complete
    assert elapsed < 0.5, elapsed  # the caller is not kept waiting


def test_concurrent_calls_share_the_model_and_each_keeps_its_budget(llm) -> None:  # type: ignore[no-untyped-def]
    async def run() -> list[Extraction]:
        return list(await asyncio.gather(*[llm.extract(s, ["name"], LLM_BUDGET_S) for s, _, _ in SEED * 2]))

    started = time.monotonic()
    results = asyncio.run(run())
    assert time.monotonic() - started <= LLM_BUDGET_S + 0.3
    assert any(r.fields["name"] for r in results)


class SlowExtractor:
    """Fake: an engine that takes far too long (a model swapping to disk)."""

    name = "fake-slow"

    async def extract(self, text: str, fields: Sequence[str], budget_s: float = 1.0) -> Extraction:
        await asyncio.sleep(30)
        return Extraction({f: "late" for f in fields}, complete=True)


def test_a_slow_engine_is_cut_off_and_the_caller_not_kept_waiting() -> None:
    started = time.monotonic()
    result = asyncio.run(within_budget(SlowExtractor(), "Marie Dubois", ["name"], 0.2))
    assert time.monotonic() - started < 0.4
    assert result == Extraction({"name": None}, complete=False, elapsed_s=result.elapsed_s)


RECAP = ("Je récapitule : Jean Martin, 12 avenue Jean Médecin, Nice, et l'artisan vous rappellera au "
         "06 12 34 56 78. C'est bien ça ?")


def test_a_long_sentence_is_synthesised_in_pieces_cut_at_its_commas() -> None:
    chunks = speech_chunks(RECAP)
    assert [c for c, _ in chunks] == ["Je récapitule :", "Jean Martin, 12 avenue Jean Médecin, Nice,",
                                      "et l'artisan vous rappellera au 06 12 34 56 78.", "C'est bien ça ?"]
    assert [end for _, end in chunks] == [True, False, True, True]
    assert " ".join(c for c, _ in chunks) == RECAP  # nothing lost, nothing added
    short = "Bonjour, vous êtes bien chez Plomberie Martin."  # short enough: one piece, commas and all
    assert speech_chunks(short) == [(short, True)]
    no_commas = "x" * (CHUNK_MAX_CHARS * 2) + "."
    assert speech_chunks(no_commas) == [(no_commas, True)]  # never cut inside a clause


class RecordingSynthesizer:
    """Fake voice: 0.2 s of tone per text it is given, and the texts it was given (what is asked of
    the engine is what this test checks, not how it sounds)."""

    name = "fake-recording"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        self.asked.append(text)
        yield np.full(3200, 8000, np.int16), 16000


def test_the_pieces_stream_in_order_with_a_pause_between_them() -> None:
    engine = RecordingSynthesizer()

    async def run() -> list[float]:
        return [frame.rms() async for frame in stream_frames(engine, RECAP, 8000)]

    levels = asyncio.run(run())
    assert engine.asked == [c for c, _ in speech_chunks(RECAP)]
    runs = [len(list(group)) for quiet, group in itertools.groupby(level < 100 for level in levels) if quiet]
    # Three pauses (a frame at each edge is part tone, part silence): after "Je récapitule :" and
    # after the number (a sentence's, 120 ms), between the two pieces of the middle sentence (a
    # comma's, 80 ms).
    assert len(runs) == 3 and runs[1] < runs[0] and runs[1] < runs[2], runs
    assert all(abs(run * 20 - ms) <= 40 for run, ms in zip(runs, (120, 80, 120), strict=True)), runs


class PacedSynthesizer(RecordingSynthesizer):
    """Fake voice that takes 4 ms a character before its audio (the pace is what this test checks)."""

    name = "fake-paced"

    def synthesize_sentences(self, text: str) -> Iterator[tuple[np.ndarray, int]]:
        time.sleep(0.004 * len(text))
        yield from super().synthesize_sentences(text)


def test_the_book_predicts_a_replys_first_audio_from_the_voices_measured_pace(tmp_path: Path) -> None:
    """What `call.ack_early` decides on: a held sentence is ready at once; one to synthesise takes its
    first piece's length at the pace the voice was measured at (unknown before it has spoken)."""
    from agent.session.phrasebook import PhraseBook

    book = PhraseBook(PacedSynthesizer(), tmp_path, 8000)
    assert book.first_audio_s("Je récapitule : Jean Martin.") is None  # nothing measured yet
    book.prepare(["Quel est votre nom ?"])  # rendered now: timed
    assert book.first_audio_s("Quel est votre nom ?") == 0.0
    pace = book.first_audio_s(RECAP)
    assert pace is not None and 0.004 * len("Je récapitule :") <= pace < 0.02 * len("Je récapitule :")

    async def speak() -> int:
        return sum([1 async for _ in book.speak("Merci beaucoup, monsieur. À bientôt.")])

    assert asyncio.run(speak()) > 0  # synthesised on a call: timed again
    again = book.first_audio_s(RECAP)
    assert again is not None and 0.004 * len("Je récapitule :") <= again < 0.02 * len("Je récapitule :")
    warm = PhraseBook(PacedSynthesizer(), tmp_path, 8000)
    warm.prepare(["Quel est votre nom ?"])  # from the disk cache: no pace learnt from it
    assert warm.first_audio_s(RECAP) is None
