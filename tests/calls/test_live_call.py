"""Issue 8: the live receptionist on a real Asterisk with real pjsua2 phones. The recogniser is
scripted (the k-th utterance yields the k-th known text: no French model can be installed here);
the VAD, the dialogue, the TTS audio the phone hears, the store and the transfer are real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.devtools.asterisk import ARTISAN_USER, SOFTPHONE_USER, DevAsterisk
from agent.devtools.phones import agent_quiet, converse, turn_latencies
from agent.devtools.radicale import Radicale
from agent.devtools.speech import CLOCK_RATE_HZ, SPEECH_RMS, frame_rms, speech_seconds
from tests.harness import InProcessAgent
from tests.live import (
    CALLER_NUMBER,
    GAS_TRIGGER,
    GAS_TURN,
    SEED_TURNS,
    dialplan_file,
    heard_speech_between,
    leftovers,
    store_rows,
    utterance_wavs,
    wait_lead,
)
from tests.signals import RATE, align, tone_mix, window_nccs, write_wav

CALL_TIMEOUT_S = 90.0


@pytest.fixture
def artisan(phones: Any, asterisk: DevAsterisk, tmp_path: Path) -> Iterator[Any]:
    acc = phones.artisan(f"127.0.0.1:{asterisk.ports.sip}", ARTISAN_USER, asterisk.artisan_password, tmp_path)
    assert phones.wait_until(lambda: acc.registered, 10), "the artisan phone did not register"
    # pjsua reuses account ids: a MESSAGE the previous test's artisan received as it was removed is
    # handed to this account at the first event pump (seen when the seed test ran right before).
    acc.messages.clear()
    yield acc
    phones.hang_up_all()
    phones.remove_account(acc)


def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def test_seed_call_end_to_end_with_the_artisan_taking_it(asterisk, live, phones, softphone, artisan,
                                                         tmp_path: Path) -> None:
    agent = live(SEED_TURNS)
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10), f"not answered (SIP {call.status})"
    converse(phones, call, utterance_wavs(tmp_path, SEED_TURNS))
    # The transfer: the artisan's phone rings, answers, hears the whisper, presses 1.
    assert phones.wait_until(lambda: bool(artisan.incoming) and artisan.incoming[0].confirmed, 40), \
        "the artisan's phone never rang"
    leg = artisan.incoming[0]
    assert CALLER_NUMBER in leg.remote_uri, "the artisan's phone does not show the caller's number"
    assert phones.wait_until(lambda: agent_quiet(leg, leg.media_active_at or 0, 0.8), 40), "no whisper heard"
    leg.press("1")
    assert phones.wait_until(lambda: any("transfer_bridged" in [n for n, _ in c.trace.marks]
                                         for c in agent.live_calls()), 10), "never bridged"
    live_call = agent.live_calls()[0]
    assert live_call.media is not None and not live_call.media.socket_open, "our RTP leg is still in the call"
    # Audio both ways, with no Python in between.
    a, b = tmp_path / "tone-a.wav", tmp_path / "tone-b.wav"
    write_wav(a, tone_mix(2.0), RATE)
    write_wav(b, tone_mix(2.0, level=5000.0)[::-1].copy(), RATE)
    phones.pump(0.5)
    call.say(a)
    leg.say(b)
    played_at = time.monotonic()
    phones.pump(3.0)
    leg.hang_up()  # the artisan hangs up: the caller is released
    assert phones.wait_until(lambda: call.ended, 3), "the caller was not released when the artisan hung up"
    assert call.ended_by_remote
    ncc_at_artisan = tone_ncc(after(leg, leg.heard(), played_at), tone_mix(2.0))
    ncc_at_caller = tone_ncc(after(call, call.heard(), played_at), tone_mix(2.0, level=5000.0)[::-1].copy())
    heard = call.heard()
    call.spoken[:] = call.spoken[: len(SEED_TURNS)]
    latencies = turn_latencies(call, heard)
    print(f"\nturn latency at the phone (s): {[round(x, 2) for x in latencies]}; "
          f"NCC caller->artisan {ncc_at_artisan:.3f}, artisan->caller {ncc_at_caller:.3f}")
    assert ncc_at_artisan >= 0.9 and ncc_at_caller >= 0.9
    assert len(latencies) == len(SEED_TURNS), "a turn got no audible reply"
    assert speech_seconds(leg.heard()[: 8 * CLOCK_RATE_HZ]) >= 2.0, "the artisan heard no whisper"
    lead = wait_lead(db(tmp_path), lambda r: r["status"] == "transferred", phones=phones)
    assert (lead["urgency"], lead["action"], lead["name"], lead["address"], lead["phone"]) == (
        "critical", "transfer", "Marie Dubois", "15 rue Victor Hugo, Nice", CALLER_NUMBER)
    turns = store_rows(db(tmp_path), "SELECT who, text FROM turns ORDER BY id")
    assert [t["text"] for t in turns if t["who"] == "caller"] == list(SEED_TURNS)
    trace = store_rows(db(tmp_path), "SELECT events FROM traces")
    for mark in ("answered", "reply_first_frame", "end_of_utterance", "asr_final", "policy_done",
                 "transfer_ringing", "transfer_answered", "transfer_accepted", "transfer_bridged"):
        assert f'"{mark}"' in trace[0]["events"], mark
    assert leftovers(asterisk) == ([], [])


def after(call: Any, heard: np.ndarray, t: float) -> np.ndarray:
    """What a phone heard from monotonic time `t` on (less 0.3 s of slack)."""
    return heard[max(0, int((t - call.media_active_at - 0.3) * CLOCK_RATE_HZ)):]


def tone_ncc(received: np.ndarray, sent: np.ndarray) -> float:
    """Median NCC of 100 ms pieces of `sent` found in `received`: a phone's jitter buffer may shift
    what follows by a frame without damaging it (as in test_call_audio)."""
    lag, _ = align(received, sent)
    return float(np.median(window_nccs(received, sent, lag)))


def _gas_call(asterisk: DevAsterisk, phones: Any, softphone: Any, tmp_path: Path) -> Any:
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10), f"not answered (SIP {call.status})"
    assert phones.wait_until(lambda: call.media_active_at is not None, 5)
    converse(phones, call, utterance_wavs(tmp_path, [GAS_TURN]), interrupt_after_s=2.0)  # over the greeting
    return call


@pytest.mark.parametrize(("mode", "behaviour", "reason", "whole"), [
    ("attended", "refuses", "refused", True),
    ("attended", "presses nothing", "timeout", False),
    ("attended", "no answer", "no answer", False),
    ("attended", "busy", "busy", False),
    ("attended", "unreachable", "unreachable", False),
    ("blind", "no answer", "no answer", True),
    ("blind", "busy", "busy", False),
    ("blind", "unreachable", "unreachable", False),
])
def test_a_transfer_that_fails_becomes_a_message(asterisk, live, phones, softphone, tmp_path: Path, mode: str,
                                                 behaviour: str, reason: str, whole: bool) -> None:
    """Each way a transfer fails is told apart and recorded; the message that follows is the same
    whatever the reason, so it is followed to the end in one case per mode (20 s a case saved)."""
    live([GAS_TURN, "C'est Marie Dubois, rappelez-moi vite."], urgency={"triggers": [GAS_TRIGGER]},
         transfer={"mode": mode, "ring_timeout": 5, "key_timeout": 2})
    acc = None
    if behaviour != "unreachable":
        acc = phones.artisan(f"127.0.0.1:{asterisk.ports.sip}", ARTISAN_USER, asterisk.artisan_password, tmp_path)
        assert phones.wait_until(lambda: acc.registered, 10)
        acc.answer_code = {"refuses": 200, "presses nothing": 200, "no answer": None, "busy": 486}[behaviour]
    try:
        call = _gas_call(asterisk, phones, softphone, tmp_path)
        if behaviour == "refuses":
            assert phones.wait_until(lambda: bool(acc.incoming) and acc.incoming[0].confirmed, 30)
            phones.pump(1.0)
            acc.incoming[0].press("2")
        lead = wait_lead(db(tmp_path), lambda r: r["status"] == "transfer_failed", timeout=40, phones=phones)
        assert lead["reason"] == reason
        actions = store_rows(db(tmp_path), "SELECT kind, result, reason FROM actions WHERE kind = 'transfer'")
        assert any(a["result"] == "failed" and a["reason"] == reason for a in actions), [dict(a) for a in actions]
        told = time.monotonic()
        if not whole:
            # The caller is told (the prompt for a message, the beep), then hangs up.
            assert phones.wait_until(lambda: agent_quiet(call, told, 1.0), 20), "the caller was not told"
            call.hang_up()
            assert phones.wait_until(lambda: call.ended, 5)
        else:
            # The caller is told, hears the beep, leaves a message; the lead keeps it.
            converse(phones, call, utterance_wavs(tmp_path, ["C'est Marie Dubois, rappelez-moi vite."]))
            lead = wait_lead(db(tmp_path), lambda r: r["recording"] is not None, timeout=30, phones=phones)
            assert Path(lead["recording"]).exists()
            assert phones.wait_until(lambda: call.ended, 30), "the call did not end after the message"
        heard = call.heard()
        assert call.media_active_at is not None
        assert heard_speech_between(heard, told - call.media_active_at - 6, len(heard) / RATE) >= 2.0
    finally:
        if acc is not None:
            phones.hang_up_all()
            phones.remove_account(acc)
    assert leftovers(asterisk) == ([], [])


def test_caller_hanging_up_while_the_artisan_rings_ends_the_ring(asterisk, live, phones, softphone, artisan,
                                                                 tmp_path: Path) -> None:
    live([GAS_TURN], urgency={"triggers": [GAS_TRIGGER]}, transfer={"ring_timeout": 30})
    artisan.answer_code = None  # let it ring
    call = _gas_call(asterisk, phones, softphone, tmp_path)
    assert phones.wait_until(lambda: bool(artisan.incoming), 30), "the artisan's phone never rang"
    phones.pump(1.0)
    call.hang_up()
    hung_up = time.monotonic()
    assert phones.wait_until(lambda: artisan.incoming[0].ended, 3)
    assert artisan.incoming[0].ended_at is not None and artisan.incoming[0].ended_at - hung_up <= 1.0
    assert leftovers(asterisk) == ([], [])


BOOKING_TURNS = ("Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.", "12 avenue Jean Médecin à Nice.",
                 "Oui c'est ça.", "Le premier.")


def test_a_booking_call_ends_with_the_slot_held_in_the_store(asterisk, live, phones, artisan,
                                                             radicale: Radicale, tmp_path: Path) -> None:
    # The caller's mobile: the softphone endpoint, registered so that Asterisk can reach it with an
    # SMS (a second account of the same user would take the MESSAGE instead); it calls, and answers nothing.
    mobile = phones.artisan(f"127.0.0.1:{asterisk.ports.sip}", SOFTPHONE_USER, asterisk.softphone_password,
                            tmp_path)
    mobile.answer_code = None
    assert phones.wait_until(lambda: mobile.registered, 10), "the caller's mobile did not register"
    mobile.messages.clear()  # as in the artisan fixture
    live(BOOKING_TURNS, extra=radicale.config_lines())  # the artisan's calendar: a real CalDAV server
    call = phones.call(mobile, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    converse(phones, call, utterance_wavs(tmp_path, BOOKING_TURNS))
    assert phones.wait_until(lambda: call.ended, CALL_TIMEOUT_S)
    assert call.ended_by_remote
    lead = wait_lead(db(tmp_path), lambda r: r["status"] == "booked", phones=phones)
    assert (lead["name"], lead["action"]) == ("Jean Martin", "booking")
    assert lead["problem"] == "canalisation bouchée : Mon évier est bouché depuis ce matin"
    held = store_rows(db(tmp_path), "SELECT start, end FROM bookings")
    assert len(held) == 1 and held[0]["start"] == lead["booking_start"] and held[0]["end"] > held[0]["start"]
    print(f"\nturn latency at the phone (s): {[round(x, 2) for x in turn_latencies(call, call.heard())]}")
    # Issue 10: the SMS, as SIP MESSAGEs through Asterisk (the `sip` route), exactly as queued.
    assert phones.wait_until(lambda: bool(artisan.messages) and bool(mobile.messages), 10), "no SMS received"
    queued = {r["kind"]: r for r in store_rows(db(tmp_path), "SELECT * FROM outbox")}
    assert artisan.messages == [queued["artisan"]["body"]] and mobile.messages == [queued["caller"]["body"]]
    assert artisan.messages[0].startswith("[normal] Jean Martin, 06 12 34 56 78, 12 avenue Jean Médecin")
    assert mobile.messages[0].startswith("Plomberie Martin : RDV confirmé ")
    assert phones.wait_until(lambda: [r["state"] for r in store_rows(
        db(tmp_path), "SELECT state FROM outbox WHERE route != 'calendar'")] == ["sent", "sent"], 5)
    phones.remove_account(mobile)
    # The booking is an event in the artisan's calendar, with the lead card.
    assert phones.wait_until(lambda: store_rows(db(tmp_path), "SELECT state FROM outbox WHERE kind = 'event'")
                             [0]["state"] == "sent", 5)
    events = radicale.calendar().search(event=True)
    assert len(events) == 1
    event = events[0].icalendar_component
    assert event.get("dtstart").dt.timestamp() == lead["booking_start"]
    assert "Jean Martin" in str(event.get("summary")) and str(event.get("location")).startswith("12 avenue Jean")
    assert leftovers(asterisk) == ([], [])


def test_without_asr_the_call_is_a_voice_message_kept_with_the_lead(asterisk, live, phones, softphone,
                                                                    tmp_path: Path) -> None:
    agent = live(None)
    assert agent.service is not None and agent.service.deps.transcriber is None
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    converse(phones, call, utterance_wavs(tmp_path, ["Bonjour, j'ai une fuite sous l'évier, rappelez-moi."]))
    assert phones.wait_until(lambda: call.ended, 30)
    lead = wait_lead(db(tmp_path), lambda r: r["recording"] is not None, phones=phones)
    assert lead["caller_id"] == CALLER_NUMBER and Path(lead["recording"]).stat().st_size > 8000
    assert phones.wait_until(lambda: bool(store_rows(db(tmp_path), "SELECT 1 FROM calls WHERE outcome = 'completed'")),
                             5), "the call's end was not stored"


def first_audio_after(asterisk, live, phones, softphone, tmp_path: Path, turns: list[str], knobs: dict[str, Any],
                      call_settings: dict[str, Any]) -> tuple[Any, Any, float]:
    """One caller turn on a live call: the call, what its phone heard, and the seconds from the
    caller's last word to the first audio they heard."""
    live(turns, knobs=knobs, call=call_settings)
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    converse(phones, call, utterance_wavs(tmp_path, turns))
    phones.pump(4.0)
    call.hang_up()
    heard = call.heard()
    return call, heard, turn_latencies(call, heard)[0]


@pytest.mark.solo
@pytest.mark.parametrize(("dead_air_ms", "bound_s"), [(0, 1.3), (800, 0.95)])
def test_a_slow_reply_is_covered_by_an_acknowledgement(asterisk, live, phones, softphone, tmp_path: Path,
                                                       dead_air_ms: int, bound_s: float) -> None:
    call, heard, latency = first_audio_after(asterisk, live, phones, softphone, tmp_path,
                                             ["Bonjour, mon évier est bouché."], {"delay_ms": 1500},
                                             {"dead_air_ms": dead_air_ms})
    print(f"\nfirst audio after the caller stopped, with a 1.5 s slow recogniser, dead_air_ms {dead_air_ms}: "
          f"{latency:.2f} s")
    # Off: the VAD hangover (0.7 s) + the 0.3 s budget + transport (1.04 s measured); with call.dead_air_ms
    # 800, 0.8 s from the caller's last word (0.83-0.86 s): both under the 1.5 s the reply took.
    assert latency <= bound_s
    assert heard_speech_between(heard, call.spoken[0][1] - call.media_active_at,
                                call.spoken[0][1] - call.media_active_at + 1.8) >= 0.3


@pytest.mark.solo
@pytest.mark.parametrize("ack_early", [True, False])
def test_a_recogniser_behind_the_caller_is_acknowledged_at_once(asterisk, live, phones, softphone, tmp_path: Path,
                                                                ack_early: bool) -> None:
    """A recogniser slower than the caller (each 20 ms frame takes it 35 ms, as on a loaded box) is
    still behind when the caller stops: its text will come after the dead-air budget, and that is
    known at the end, so "D'accord." plays at once (`call.ack_early`, the default) instead of after
    300 ms of silence (the former behaviour, run as the check that the two differ)."""
    _call, _heard, latency = first_audio_after(asterisk, live, phones, softphone, tmp_path,
                                               ["Bonjour, mon évier est bouché depuis ce matin."],
                                               {"frame_delay_ms": 35}, {"ack_early": ack_early})
    print(f"\nfirst audio after the caller stopped, recogniser behind, ack_early {ack_early}: {latency:.2f} s")
    # At once: the 0.7 s hangover + transport (0.71 s measured); after the budget, 0.3 s more (1.03 s).
    assert (latency <= 0.95) is ack_early


class PhraseListTranscriber:
    """The real Vosk engine (the Korean stand-in) with a phrase list on every session: espeak-ng's
    Korean is only recognised reliably against a short list (see test_engines)."""

    def __init__(self, engine: Any, phrases: list[str]) -> None:
        self.engine = engine
        self.phrases = phrases
        self.name = engine.name
        self.language = engine.language

    def session(self, rate: int, phrases: list[str] | None = None) -> Any:
        return self.engine.session(rate, self.phrases)


def test_the_real_vosk_recogniser_in_the_loop(asterisk, phones, softphone, tmp_path: Path) -> None:
    """The Korean Vosk stand-in (no French model here) in a live call: the caller's words, spoken
    by espeak-ng over SIP and RTP, come out of the real recogniser into the stored transcript."""
    from agent.asr.vosk_engine import VoskEngine
    from agent.engines import load_asr
    from agent.tts.espeak_engine import synthesize_espeak
    from agent.tts.prompt_files import to_rate

    engine, _ = load_asr(Path("/nonexistent"))
    assert isinstance(engine, VoskEngine) and engine.language == "ko"
    plan = dialplan_file(tmp_path)
    config = asterisk.controller_config(tmp_path / "standardiste.yaml", dialplan=str(plan),
                                        store=tmp_path / "store.db")
    agent = InProcessAgent(asterisk, config=config,
                           transcriber=PhraseListTranscriber(engine, ["안녕하세요", "네", "아니요"])).start()
    try:
        samples, rate = synthesize_espeak("안녕하세요", voice="ko")
        said = tmp_path / "korean.wav"
        write_wav(said, np.concatenate([np.zeros(800, np.int16), to_rate(samples, rate, RATE)]), RATE)
        call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
        assert phones.wait_until(lambda: call.confirmed, 10)
        converse(phones, call, [said])
        assert phones.wait_until(lambda: bool(store_rows(db(tmp_path), "SELECT 1 FROM turns WHERE who = 'caller'")),
                                 15), "nothing recognised"
        call.hang_up()
        texts = [r["text"] for r in store_rows(db(tmp_path), "SELECT text FROM turns WHERE who = 'caller'")]
        print(f"\nthe Korean stand-in heard: {texts}")
        # Real recognition of robotic espeak-ng Korean through G.711: the word said comes out first
        # (an extra phrase-list word after it was seen once in a few runs).
        assert len(texts) == 1 and texts[0].split()[0] == "안녕하세요"
    finally:
        agent.stop()


PAUSED_TURNS = ("Bonjour, mon évier est bouché depuis ce matin.", "Jeanne Vidal, | V I D A L.",
                "12 avenue Jean Médecin à Nice.",
                "Non, rappelez-moi au | zéro six, | quarante-cinq, | douze, | trente-quatre, | cinquante-six.",
                "Oui c'est ça.", "Le premier.")
"""A caller who pauses 500 ms (devtools/speech.py PAUSE_MS) after "Jeanne Vidal," before spelling the
surname (as outside callers do: "Claire Fontaine, F O N T A I N E."), and after each pair of their number."""
PAUSED_HEARD = 7
"""The utterances the receptionist hears: "Jeanne Vidal" is a whole answer to "your name?", so the turn
ends in the pause, and the spelling that follows is another utterance, its continuation."""


def _first_stretch_s(wav: Path) -> float:
    """Where the first stretch of a paused utterance ends in its file (its first silence of 400 ms
    after speech), s."""
    import wave

    with wave.open(str(wav), "rb") as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    voiced = frame_rms(samples, rate // 50) > SPEECH_RMS
    first = int(np.argmax(voiced))
    for i in range(first, len(voiced) - 20):
        if not voiced[i:i + 20].any():
            return i / 50
    raise AssertionError(f"no pause in {wav}")


def _first_speech_after(heard: np.ndarray, at_s: float) -> float:
    """Seconds from `at_s` (into what the phone heard) to the first voiced frame after it."""
    rms = frame_rms(heard)
    start = int(at_s * 50)
    voiced = np.nonzero(rms[start:] > SPEECH_RMS)[0]
    assert len(voiced), "nothing heard after the pause"
    return float(voiced[0]) / 50


def test_a_complete_answer_is_replied_to_at_once_and_a_paused_number_is_not_cut(
        asterisk, live, phones, softphone, tmp_path: Path) -> None:
    """Issue 22: the end of a turn decided after 200 ms of silence from the words heard: "Jeanne Vidal,"
    to "Votre nom ?" is answered within 400 ms of its end (the hangover alone took 700 ms before any
    reply); "V I D A L.", said over the reply, stops it and is joined to it (the name stays "Jeanne
    Vidal"); a number dictated in pairs, with pauses longer than that, is one utterance, never cut."""
    live(PAUSED_TURNS)  # the scripted recogniser follows the cuts (asr/scripted.py)
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    wavs = utterance_wavs(tmp_path, PAUSED_TURNS)
    converse(phones, call, wavs)
    assert phones.wait_until(lambda: call.ended, CALL_TIMEOUT_S)
    heard = call.heard()
    latencies = turn_latencies(call, heard)
    assert call.media_active_at is not None
    name_part_end = call.spoken[1][0] + _first_stretch_s(wavs[1]) - call.media_active_at
    early = _first_speech_after(heard, name_part_end)
    print(f"\nturn latency at the phone (s): {[round(x, 2) for x in latencies]}; 'Jeanne Vidal,' answered "
          f"{early:.2f} s after its end")
    assert early <= 0.4, f"'Jeanne Vidal,' answered {early:.2f} s after its end"
    assert len(latencies) >= 4
    assert latencies[3] > 0, "the reply to the number started before the caller had finished it"
    lead = wait_lead(db(tmp_path), lambda r: r["status"] == "booked", phones=phones)
    assert lead["name"] == "Jeanne Vidal" and lead["phone"] == "+33645123456"
    assert phones.wait_until(lambda: bool(store_rows(db(tmp_path), "SELECT 1 FROM traces")), 10)
    trace = store_rows(db(tmp_path), "SELECT t.events FROM traces t")[0]["events"]
    ends = trace.count('"end_of_utterance"')
    assert ends == PAUSED_HEARD, f"{ends} utterances heard for {PAUSED_HEARD}: a caller cut"
    assert '"turn_end_words"' in trace and trace.count('"turn_goes_on"') == 1
