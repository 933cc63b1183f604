"""Issue 22: the end of a turn decided in a short pause, from the words (dialogue/complete.py) and the
sound (Smart Turn, the real model from the pinned pipecat-ai wheel), with the fixed pause as the
fallback when the model is missing or fails."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from agent.asr.base import Transcript
from agent.asr.scripted import ScriptedTranscriber, revealed
from agent.audio.frames import AudioFrame, split_frames
from agent.audio.turn_model import MODEL_DIR, SmartTurn, TurnDecider, load_turn_model
from agent.audio.vad import Paused
from agent.dialogue.complete import answers, checkable, hanging
from agent.dialogue.dialplan import builtin_dialplan
from agent.dialogue.heard import Expect
from agent.dialogue.policy import Conversation
from agent.dialogue.slots import Slot
from agent.dialogue.state import Ask
from agent.session.turn_end import TurnEnd
from tests.conftest import REPO
from tests.signals import RATE, speech

NOW = datetime(2026, 12, 2, 10)
MODELS = REPO / "models" / MODEL_DIR

OFFERED = (Slot(datetime(2026, 12, 2, 13, 30), datetime(2026, 12, 2, 15, 30)),
           Slot(datetime(2026, 12, 3, 8), datetime(2026, 12, 3, 10)))
"""Today at 13 h 30 or tomorrow at 8 h (NOW is 2 December, 10 h)."""
ANSWERS = [
    (Expect(Ask.RECAP), "oui", False), (Expect(Ask.RECAP), "Oui, c'est bien ça.", True),
    (Expect(Ask.CHECK), "oui, oui", False), (Expect(Ask.DANGER), "non personne", True),
    (Expect(Ask.MORE), "d'accord", False),  # a lone word: the caller may go on ("Oui, | le premier...")
    (Expect(Ask.RECAP), "oui mais", False), (Expect(Ask.RECAP), "non le numéro c'est", False),
    (Expect(Ask.RECAP), "non", False), (Expect(Ask.DANGER), "non", False), (Expect(Ask.MORE), "non merci", True),
    (Expect(Ask.RECAP), "non rappelez-moi au zéro", False),
    (Expect(Ask.RECAP), "non rappelez-moi au zéro six quarante cinq douze trente quatre cinquante six", True),
    (Expect(Ask.FIELD, "name"), "marie dubois", True), (Expect(Ask.FIELD, "name"), "je m'appelle", False),
    (Expect(Ask.FIELD, "name"), "jean", False), (Expect(Ask.FIELD, "name"), "pierre-yves", False),  # half a name
    (Expect(Ask.FIELD, "name"), "madame vidal", False),  # a surname: the whole name may follow
    (Expect(Ask.FIELD, "name"), "monsieur le goff", False), (Expect(Ask.FIELD, "name"), "yannick le bihan", True),
    (Expect(Ask.FIELD, "name"), "Madame Simone Teulière.", True),
    (Expect(Ask.FIELD, "name"), "dubois d u b", False),
    (Expect(Ask.FIELD, "phone"), "zéro six douze trente quatre cinquante six soixante dix huit", True),
    (Expect(Ask.FIELD, "phone"), "zéro six douze trente quatre", False),
    (Expect(Ask.FIELD, "address"), "12 avenue Jean Médecin à Nice.", True),
    (Expect(Ask.FIELD, "address"), "c'est au quinze rue", False),
    (Expect(Ask.FIELD, "address"), "quinze rue de la république", False),  # the town may follow
    (Expect(Ask.FIELD, "problem"), "j'ai une fuite d'eau sous l'évier", False),  # only the sound can tell
    (Expect(Ask.SLOT, offered=OFFERED), "Oui, le premier,", False),  # "..., ça me va.": outside callers go on
    (Expect(Ask.SLOT, offered=OFFERED), "le premier", False),
    (Expect(Ask.SLOT, offered=OFFERED), "oui le premier ça me va", True),
    (Expect(Ask.SLOT, offered=OFFERED), "Demain à 8 h, très bien.", True),
    (Expect(Ask.SLOT, offered=OFFERED), "le premier mais venez vite", False),
]


@pytest.mark.parametrize(("expect", "text", "complete"), ANSWERS, ids=[t for _, t, _ in ANSWERS])
def test_the_words_say_whether_the_question_is_answered(expect: Expect, text: str, complete: bool) -> None:
    assert answers(expect, text, NOW) is complete


def test_what_the_words_can_check_and_what_leaves_a_sentence_open() -> None:
    assert checkable(Expect(Ask.FIELD, "phone")) and checkable(Expect(Ask.RECAP))
    assert not checkable(Expect(Ask.FIELD, "problem")) and not checkable(Expect(None))
    assert hanging("j'habite au") and hanging("c'est au quinze rue") and hanging("d u b") and hanging("")
    assert not hanging("mon évier est bouché.")


def test_the_scripted_recogniser_shows_a_stretch_only_once_it_is_said() -> None:
    """Between two marked pauses, the words come in step with the voice, never past the pause."""
    text = "Non, rappelez-moi au | zéro six, | douze."
    session = ScriptedTranscriber((text,)).session(RATE)
    gap = np.zeros(RATE // 2, np.int16)
    audio = np.concatenate([speech("Non, rappelez-moi au"), gap, speech("zéro six,"), gap, speech("douze.")])
    seen = [t.text for f in split_frames(audio, RATE) if (t := asyncio.run(session.feed(AudioFrame(f.samples, RATE,
                                                                                                   0.0))))]
    assert seen[-1] == "Non, rappelez-moi au zéro six, douze."
    before_douze = [s for s in seen if "douze" not in s]
    assert before_douze[-1] == "Non, rappelez-moi au zéro six,"  # complete at the pause, no further
    assert not any("zéro" in s for s in seen[:seen.index("Non, rappelez-moi au") + 1])
    assert asyncio.run(session.finish()).text == "Non, rappelez-moi au zéro six, douze."


def test_a_turn_cut_at_a_marked_pause_leaves_the_rest_of_its_text_to_the_next_utterance() -> None:
    """The scripted recogniser follows the audio wherever the utterances are cut: "Jean | Martin."
    ended at its pause gives "Jean", and the next utterance "Martin."; said whole, "Jean Martin."."""
    gap = np.zeros(RATE // 2, np.int16)

    def utterance(session, *parts: str) -> str:  # type: ignore[no-untyped-def]
        audio = np.concatenate([x for p in parts for x in (speech(p), gap)][:-1])
        for f in split_frames(audio, RATE):
            asyncio.run(session.feed(AudioFrame(f.samples, RATE, 0.0)))
        return str(asyncio.run(session.finish()).text)

    cut = ScriptedTranscriber(("Jean | Martin.", "Oui.")).session(RATE)
    assert [utterance(cut, "Jean"), utterance(cut, "Martin."), utterance(cut, "Oui.")] == ["Jean", "Martin.", "Oui."]
    whole = ScriptedTranscriber(("Jean | Martin.", "Oui.")).session(RATE)
    assert [utterance(whole, "Jean", "Martin."), utterance(whole, "Oui.")] == ["Jean Martin.", "Oui."]
    # Cut twice in a number said in pairs: each utterance gets what was said in it.
    pairs = ScriptedTranscriber(("zéro six, | douze, | trente.",)).session(RATE)
    assert [utterance(pairs, "zéro six,"), utterance(pairs, "douze,", "trente.")] == ["zéro six,", "douze, trente."]


def test_the_scripted_recogniser_shows_its_words_in_step_with_the_voice() -> None:
    """Partial results: whole words, as much as the voiced audio so far has had time to say."""
    assert revealed("Bonjour, mon évier est bouché.", 12) == "Bonjour, mon"
    text = "Bonjour, mon évier est bouché."
    session = ScriptedTranscriber((text,)).session(RATE)
    frames = [AudioFrame(f.samples, RATE, 0.0) for f in split_frames(speech(text), RATE)]
    seen = [t.text for f in frames if (t := asyncio.run(session.feed(f))) is not None]
    assert seen and all(text.startswith(s) for s in seen) and len(set(seen)) == len(seen)
    assert asyncio.run(session.finish()).text == text


def test_given_each_stretchs_duration_the_scripted_recogniser_shows_the_last_word_by_its_end() -> None:
    """With the voiced duration of each stretch as the phones say it (`voiced_ms`), the words are
    spread over that audio: the whole stretch shows by its end, as a streaming recogniser's partial
    does at the pause after it (at 35 ms a character, a fast "Oui c'est ça." still lacked "ça." 200 ms
    after it: the turn waited the hangover), and no word shows before half of it has been heard."""
    from agent.devtools.speech import voiced_ms

    for text in ("Oui c'est ça.", "trente-quatre,", "Bonjour, j'ai un robinet qui goutte dans la salle de bain."):
        durations = {k: tuple(v) for k, v in voiced_ms([text]).items()}
        session = ScriptedTranscriber((text,), voiced_ms=durations).session(RATE)
        frames = [AudioFrame(f.samples, RATE, 0.0) for f in split_frames(speech(text), RATE)]
        seen = [(i, t.text) for i, f in enumerate(frames) if (t := asyncio.run(session.feed(f))) is not None]
        assert seen[-1][1] == text, (text, seen[-1])
        halfway = [shown for i, shown in seen if i < len(frames) // 2]
        assert not halfway or len(halfway[-1]) <= 0.75 * len(text), (text, halfway[-1])


needs_model = pytest.mark.skipif(not (MODELS / "smart-turn-v3.2-cpu.onnx").exists(),
                                 reason="scripts/install-turn-model.sh not run (make venv runs it)")


@needs_model
def test_smart_turn_reads_an_utterance_in_reasonable_time() -> None:
    """The real model on the stand-in voice: a probability, and its cost (printed; bench measures it)."""
    import time

    model = SmartTurn(MODELS)
    audio = speech("Bonjour, j'ai une fuite d'eau sous l'évier.")
    costs = []
    for _ in range(3):
        started = time.perf_counter()
        p = model.finished(audio, RATE)
        costs.append((time.perf_counter() - started) * 1000)
        assert 0.0 <= p <= 1.0
    print(f"\nsmart turn: {min(costs):.0f} ms a decision (best of 3), p = {p:.2f}")


def test_a_missing_or_broken_model_falls_back_to_the_pause_with_one_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.audio.turn_model"):
        assert load_turn_model(tmp_path / "nowhere") is None
    assert len(caplog.records) == 1 and "fixed pause" in caplog.records[0].getMessage()
    if (MODELS / "whisper_features.py").exists():
        broken = tmp_path / "broken"
        broken.mkdir()
        shutil.copy(MODELS / "whisper_features.py", broken)
        (broken / "smart-turn-v3.2-cpu.onnx").write_bytes(b"not an onnx model")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="agent.audio.turn_model"):
            assert load_turn_model(broken) is None
        assert len(caplog.records) == 1


class CrashingModel:
    """A stand-in for a model that crashes mid-call (the real one cannot be made to), named as such."""

    name = "crashing (test stand-in)"
    calls = 0

    def finished(self, samples: np.ndarray, rate: int) -> float:
        self.calls += 1
        raise RuntimeError("onnxruntime fell over")


def _paused(text: str) -> Paused:
    frames = tuple(AudioFrame(f.samples, RATE, 100 + i * 0.02) for i, f in enumerate(split_frames(speech(text), RATE)))
    return Paused(100.0, frames[-1].timestamp, frames)


def test_a_model_that_crashes_is_set_aside_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    model = CrashingModel()
    decider = TurnDecider(model)
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678")
    conv.start()  # "Quel est votre problème ?": the words cannot check it, the sound decides
    ended: list[Paused] = []
    end = TurnEnd(conv, lambda p: ended.append(p) is None, decider)

    async def two_pauses() -> None:
        with caplog.at_level(logging.WARNING, logger="agent.audio.turn_model"):
            await end.decide(_paused("Bonjour, mon évier est bouché."))
            await end.decide(_paused("Bonjour, mon évier est bouché."))

    asyncio.run(two_pauses())
    assert not ended and end.counts["wait"] == 2  # left to the hangover: the call goes on
    assert model.calls == 1 and decider.failed is not None
    assert len([r for r in caplog.records if "fixed pause" in r.getMessage()]) == 1


def test_the_words_end_the_turn_without_the_model() -> None:
    conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678")
    conv.start()
    conv.ask(Ask.RECAP)
    ended: list[Paused] = []
    end = TurnEnd(conv, lambda p: ended.append(p) is None, None)
    end.heard(Transcript("oui c'est ça", final=False))
    asyncio.run(end.decide(_paused("Oui, c'est ça.")))
    assert len(ended) == 1 and end.counts["words"] == 1
    end.reset()
    conv.ask(Ask.FIELD, "phone")
    end.heard(Transcript("zéro six douze", final=False))
    asyncio.run(end.decide(_paused("zéro six douze")))
    assert len(ended) == 1 and end.counts["wait"] == 1  # half a number: never cut


def test_words_said_after_an_early_end_are_joined_to_that_turn() -> None:
    """A caller who goes on after their turn was ended in a pause ("Jeanne Vidal," ... "V I D A L.",
    the name, then its spelling): the rest is read with the first part against the question they
    were answering, not as an answer to the next one; the utterances heard count it once."""
    async def run(goes_on: bool) -> tuple[Conversation, str, str]:
        conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678")
        conv.start()
        await conv.turn("J'ai une fuite sous l'évier.")
        assert conv.expect() == Expect(Ask.FIELD, "name")
        first = await conv.turn("Jeanne Vidal,")
        return conv, first, await conv.turn("V I D A L.", continues=goes_on)

    conv, first, second = asyncio.run(run(True))
    assert conv.lead.name == "Jeanne Vidal" and second == first and len(conv.heard) == 2
    assert conv.expect() == Expect(Ask.FIELD, "address")
    conv, first, second = asyncio.run(run(False))  # taken as its own turn, a spelling is no address
    assert conv.lead.name == "Jeanne Vidal" and second != first and len(conv.heard) == 3


def test_the_rest_of_an_early_turn_is_judged_with_it() -> None:
    """ "Jeanne Vidal" ends the turn in its pause (a name); the conversation moves on to the address.
    "Vidal", said 0.5 s after (the surname again), is no address, but it is the rest of the name:
    judged with the first part against "your name?", it is complete and ends at once. Said 1 s after
    (past the hangover) it is a turn of its own, left to the hangover."""
    for gap, how in ((0.5, "words"), (1.0, "wait")):
        conv = Conversation(builtin_dialplan("plombier"), NOW, "+33612345678")
        conv.start()
        conv.ask(Ask.FIELD, "name")
        ended: list[Paused] = []
        end = TurnEnd(conv, lambda p, e=ended: e.append(p) is None, None, join_s=0.7)
        first = _paused("Jeanne Vidal")
        end.heard(Transcript("jeanne vidal", final=False))
        asyncio.run(end.decide(first))
        end.reset()
        conv.ask(Ask.FIELD, "address")
        frames = tuple(AudioFrame(f.samples, RATE, first.at + gap + i * 0.02) for i, f in enumerate(first.frames))
        end.heard(Transcript("vidal", final=False))
        asyncio.run(end.decide(Paused(frames[0].timestamp, frames[-1].timestamp, frames)))
        assert end.counts["words"] == (2 if how == "words" else 1) and end.counts["wait"] == (how == "wait")


def _brown(n: int, seed: int = 3) -> np.ndarray:
    """Car-like noise: integrated white noise, low-passed by the integration, zero mean."""
    x = np.cumsum(np.random.default_rng(seed).normal(0, 1, n))
    x -= np.convolve(x, np.ones(400) / 400, mode="same")
    return x / np.abs(x).max()


@needs_model
def test_in_car_noise_silero_still_hears_the_pause_that_ends_a_turn() -> None:
    """scripts/compare_vad.py in one case: a sentence, then silence, under noise at 5 dB SNR. The turn
    detector with Silero ends the utterance after the hangover; with webrtcvad the noise is speech."""
    from agent.audio.vad import TurnDetector, UtteranceEnded, VadEngine, VadSettings

    words = speech("Bonjour, mon évier est bouché depuis ce matin.").astype(np.float64)
    clean = np.concatenate([np.zeros(RATE // 2), words, np.zeros(RATE * 2)])
    noise = _brown(len(clean))
    level = np.sqrt((words ** 2).mean() / (noise ** 2).mean() / 10 ** (5 / 10))
    noisy = np.clip(clean + level * noise, -32768, 32767).astype(np.int16)
    ends = {}
    for engine in VadEngine:
        det = TurnDetector(VadSettings(engine=engine, silero_model=MODELS / "silero_vad.onnx"), RATE)
        events = [e for i, f in enumerate(split_frames(noisy, RATE)) for e in det.push(AudioFrame(f.samples, RATE,
                                                                                                i * 0.02))]
        ends[engine] = [e for e in events if isinstance(e, UtteranceEnded)]
    speech_end = (RATE // 2 + len(words)) / RATE
    assert len(ends[VadEngine.SILERO]) == 1 and abs(ends[VadEngine.SILERO][0].ended_at - speech_end) < 0.4
    assert not ends[VadEngine.WEBRTC] or ends[VadEngine.WEBRTC][0].ended_at > speech_end + 0.4


@needs_model
def test_silero_counts_the_onset_it_hears_late_so_a_short_word_can_end_a_turn() -> None:
    """Silero calls a sound speech 40-80 ms after it begins: "Jean" then measured about 140 ms of
    speech on a live call, under the 160 ms an utterance needs, so no pause was decided after it
    (then the words took "Jean" for a whole name: the pause after a short word must be decided on). The loud frames just
    before its first "speech" are the word's onset: counted, the utterance starts where webrtcvad
    starts it, and the pause after the short word is decided on, whatever the frames' alignment."""
    from agent.audio.vad import Paused, SpeechStarted, TurnDetector, VadEngine, VadSettings

    said = np.concatenate([np.zeros(RATE // 4, np.int16), speech("Jean"), np.zeros(RATE // 2, np.int16),
                           speech("Martin."), np.zeros(RATE, np.int16)])
    for shift in (0, 40, 80, 120):  # samples: where the 32 ms chunks fall against the word
        starts, pauses = {}, {}
        for engine in VadEngine:
            det = TurnDetector(VadSettings(engine=engine, silero_model=MODELS / "silero_vad.onnx"), RATE)
            audio = np.concatenate([np.zeros(shift, np.int16), said])
            events = [e for i, f in enumerate(split_frames(audio, RATE))
                      for e in det.push(AudioFrame(f.samples, RATE, i * 0.02))]
            starts[engine] = next(e.at for e in events if isinstance(e, SpeechStarted))
            pauses[engine] = [e for e in events if isinstance(e, Paused)]
        assert abs(starts[VadEngine.SILERO] - starts[VadEngine.WEBRTC]) < 0.01, (shift, starts)
        jean_end = (shift + RATE // 4 + len(speech("Jean"))) / RATE
        assert any(abs(p.at - jean_end) < 0.1 for p in pauses[VadEngine.SILERO]), (shift, pauses)


@needs_model
@pytest.mark.parametrize("lead_s", [0.1, 1.0, 5.0, 9.0])
def test_silero_hears_speech_going_on_after_a_pause_at_a_lower_threshold(lead_s: float) -> None:
    """"Bonjour, | euh, | mon évier est bouché" over G.711, the end of the turn left to the 700 ms
    hangover: one utterance. Silero gave the nasal onset of "mon" 0.45 for 160 ms; at its start
    threshold (0.5) that was silence, the 500 ms pause became 700 ms and the caller was cut."""
    from agent.audio import g711
    from agent.audio.vad import TurnDetector, UtteranceEnded, VadEngine, VadSettings
    from agent.devtools.speech import french_speech

    gap = np.zeros(RATE // 2, np.int16)
    said = np.concatenate([np.zeros(int(RATE * lead_s), np.int16), french_speech("Bonjour,"), gap,
                           french_speech("euh,"), gap, french_speech("mon évier est bouché"), np.zeros(RATE, np.int16)])
    line = g711.ulaw_decode(g711.ulaw_encode(said))
    det = TurnDetector(VadSettings(engine=VadEngine.SILERO, pause_ms=0, silero_model=MODELS / "silero_vad.onnx"), RATE)
    ends = [e for i, f in enumerate(split_frames(line, RATE)) for e in det.push(AudioFrame(f.samples, RATE, i * 0.02))
            if isinstance(e, UtteranceEnded)]
    assert len(ends) == 1, [(e.started_at, e.ended_at) for e in ends]


@needs_model
@pytest.mark.parametrize("reset", [True, False], ids=["state-cleared", "never-cleared"])
def test_silero_hears_every_answer_of_a_long_call_from_its_first_sound(reset: bool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A call's caller side over G.711: answers long and short, seconds of silence between them
    while the receptionist speaks. Silero's recurrent state, never cleared, drifted over such a
    call until a 180 ms "oui" 40 s in scored under 0.5 to its last 40 ms: no utterance, the answer
    lost (bench, pause set). Cleared in the quiet (silero.RESET_EVERY_S), every answer starts within
    60 ms of its first sound and none is discarded; never cleared, that fails (the control)."""
    from agent.audio import g711, silero
    from agent.audio.vad import SpeechDiscarded, SpeechStarted, TurnDetector, VadEngine, VadSettings
    from agent.devtools.speech import french_speech

    if not reset:
        monkeypatch.setattr(silero, "RESET_EVERY_S", 1e9)
    answers = ["Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.",
               "C'est au douze avenue Jean Médecin, à Nice.", "Oui", "Le premier.", "Non.", "Oui.", "Jean.",
               "Oui.", "Non.", "Oui.", "Paul."]
    parts, onsets, at = [], [], 0
    for k, text in enumerate(answers):
        said = french_speech(text)
        quiet = np.zeros(RATE * (5 + k * 7919 % 5), np.int16)  # the receptionist's reply: 5-9 s
        onsets.append((at + len(quiet)) / RATE)
        parts += [quiet, said]
        at += len(quiet) + len(said)
    line = g711.ulaw_decode(g711.ulaw_encode(np.concatenate([*parts, np.zeros(RATE * 2, np.int16)])))
    det = TurnDetector(VadSettings(engine=VadEngine.SILERO, silero_model=MODELS / "silero_vad.onnx"), RATE)
    events = [e for i, f in enumerate(split_frames(line, RATE))
              for e in det.push(AudioFrame(f.samples, RATE, i * 0.02))]
    starts = [e.at for e in events if isinstance(e, SpeechStarted)]
    late = {text: round(min((s - a for s in starts if s >= a - 0.05), default=99.0), 2)
            for text, a in zip(answers, onsets, strict=True)}
    lost = [e.started_at for e in events if isinstance(e, SpeechDiscarded)]
    heard_well = all(d <= 0.06 for d in late.values()) and not lost
    assert heard_well is reset, (late, lost)


def test_silero_without_its_model_is_a_config_error(tmp_path: Path) -> None:
    from agent.config import parse_config
    from agent.yamlnode import ConfigError

    secret = tmp_path / "ari"
    secret.write_text("s3cret-Horse-Battery-42\n")
    secret.chmod(0o600)
    data = {"ari": {"password_file": str(secret)}, "paths": {"models": str(tmp_path / "none")},
            "dialplans": {"default": "plombier"}, "media": {"vad": {"engine": "silero"}}}
    with pytest.raises(ConfigError, match=r"media\.vad\.engine"):
        parse_config(data, str(tmp_path / "standardiste.yaml"))


@needs_model
def test_auto_takes_silero_when_its_model_is_installed(tmp_path: Path) -> None:
    from agent.audio.vad import VadEngine
    from agent.config import parse_config

    secret = tmp_path / "ari"
    secret.write_text("s3cret-Horse-Battery-42\n")
    secret.chmod(0o600)
    base = {"ari": {"password_file": str(secret)}, "dialplans": {"default": "plombier"}}
    default = parse_config({**base, "paths": {"models": str(MODELS.parent)}}, "standardiste.yaml")
    assert default.media.vad.engine is VadEngine.SILERO  # auto is the default
    webrtc = parse_config({**base, "media": {"vad": {"engine": "webrtc"}}}, "standardiste.yaml")
    assert webrtc.media.vad.engine is VadEngine.WEBRTC
    base = {**base, "media": {"vad": {"engine": "auto"}}}
    installed = parse_config({**base, "paths": {"models": str(MODELS.parent)}}, "standardiste.yaml")
    assert installed.media.vad.engine is VadEngine.SILERO and installed.media.vad.silero_model is not None
    missing = parse_config({**base, "paths": {"models": str(tmp_path)}}, "standardiste.yaml")
    assert missing.media.vad.engine is VadEngine.WEBRTC  # auto: webrtcvad, said in the log at start


def test_a_timed_script_needs_the_recogniser_the_assembly_gives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """asr/scripted.py imports no engine: `timed_with_vosk` takes the real recogniser from its caller
    (app.py gives Vosk's stand-in model), and says so when none is given."""
    import json

    from agent.asr.scripted import ScriptedTranscriber
    from agent.yamlnode import ConfigError

    path = tmp_path / "script.json"
    path.write_text(json.dumps({"utterances": ["Bonjour."], "timed_with_vosk": True}))
    with pytest.raises(ConfigError, match="timed_with_vosk"):
        ScriptedTranscriber.load(path)
    timer = ScriptedTranscriber(("x",))
    made = ScriptedTranscriber.load(path, timer=lambda: timer)
    assert made.timed_with is timer and "timed with the real" in made.name
