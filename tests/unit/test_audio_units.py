"""Audio building blocks without Asterisk: G.711, RTP parsing, the jitter buffer, turn detection."""

from __future__ import annotations

import asyncio
import socket
import struct
import warnings

import numpy as np
import pytest

from agent.audio.frames import AudioFrame, split_frames
from agent.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from agent.audio.vad import Paused, SpeechStarted, TurnDetector, UtteranceEnded, VadSettings
from agent.telephony.rtp import JitterBuffer, MalformedPacket, RtpPacket, RtpSocket, parse_rtp
from tests.signals import RATE, speech

ALL16 = np.arange(-32768, 32768, dtype=np.int16)


def test_g711_known_values() -> None:
    assert ulaw_encode(np.array([0, 32767, -32768], np.int16)) == bytes([0xFF, 0x80, 0x00])
    assert alaw_encode(np.array([0, 32767, -32768], np.int16)) == bytes([0xD5, 0xAA, 0x2A])
    assert list(ulaw_decode(bytes([0xFF, 0x80, 0x00]))) == [0, 32124, -32124]
    assert list(alaw_decode(bytes([0xD5, 0xAA, 0x2A]))) == [8, 32256, -32256]


@pytest.mark.parametrize("enc, dec", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip_error_is_within_one_quantisation_step(enc, dec) -> None:  # type: ignore[no-untyped-def]
    back = dec(enc(ALL16)).astype(np.int32)
    err = np.abs(back - ALL16.astype(np.int32))
    # Segment step doubles with magnitude: the error stays below about 1/16 of the value (+ a floor).
    assert np.all(err <= np.abs(ALL16.astype(np.int32)) / 16 + 36)


def test_g711_matches_the_reference_implementation_where_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # the C reference, gone in Python 3.13
    pcm = ALL16.astype("<i2").tobytes()
    assert ulaw_encode(ALL16) == audioop.lin2ulaw(pcm, 2)
    assert alaw_encode(ALL16) == audioop.lin2alaw(pcm, 2)
    codes = bytes(range(256))
    assert ulaw_decode(codes).astype("<i2").tobytes() == audioop.ulaw2lin(codes, 2)
    assert alaw_decode(codes).astype("<i2").tobytes() == audioop.alaw2lin(codes, 2)


def rtp(seq: int, payload: bytes = b"\xff" * 160, pt: int = 0) -> RtpPacket:
    return RtpPacket(pt, seq & 0xFFFF, seq * 160, 42, False, payload)


def test_parse_rtp_with_csrc_extension_and_padding() -> None:
    head = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80, 7, 1600, 99)
    data = head + b"\x00" * 8 + struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4 + b"abc" + b"\x00\x03"
    data = data[:-2] + b"\x00\x00\x03"  # payload "abc", then 3 bytes of padding (last byte = 3)
    pkt = parse_rtp(data)
    assert (pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.marker) == (0, 7, 1600, 99, True)
    assert pkt.payload == b"abc"
    assert parse_rtp(rtp(5).encode()) == rtp(5)


@pytest.mark.parametrize("data", [b"", b"\x80" * 11, b"\x40" + b"\x00" * 20, b"\x90\x00" + b"\x00" * 12,
                                  b"\xa0\x00" + b"\x00" * 10, struct.pack("!BBHII", 0x80, 0, 1, 2, 3)])
def test_malformed_rtp_is_rejected(data: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse_rtp(data)


def test_random_bytes_never_raise_anything_but_malformed() -> None:
    rng = np.random.default_rng(1)
    parsed = 0
    for _ in range(20000):
        data = rng.bytes(int(rng.integers(0, 300)))
        try:
            parse_rtp(data)
            parsed += 1
        except MalformedPacket:
            pass
    assert parsed > 0  # some random headers are valid RTP; the rest are refused, none crash


def seqs(items: list[RtpPacket | None]) -> list[int | None]:
    return [None if p is None else p.sequence for p in items]


def test_jitter_buffer_reorders_and_reports_loss() -> None:
    jb = JitterBuffer(depth=3)
    out: list[RtpPacket | None] = []
    for s in [10, 12, 11, 13, 15, 16, 17, 18]:  # 12 before 11; 14 never comes
        out += jb.push(rtp(s))
    assert seqs(out) == [10, 11, 12, 13, None, 15, 16, 17, 18][: len(out)]
    assert jb.stats.lost == 1
    assert len(jb) <= 3


def test_jitter_buffer_drops_duplicates_and_late_packets_and_wraps() -> None:
    jb = JitterBuffer(depth=3)
    out: list[RtpPacket | None] = []
    for s in [65534, 0, 0, 65535, 1, 65533]:  # 0 arrives twice while 65535 is awaited
        out += jb.push(rtp(s))
    assert seqs(out) == [65534, 65535, 0, 1]
    assert jb.stats.duplicate == 1 and jb.stats.late == 1


def test_jitter_buffer_resynchronises_on_a_new_stream() -> None:
    jb = JitterBuffer(depth=3)
    jb.push(rtp(100))
    out = jb.push(rtp(30000))
    assert seqs(out) == [30000]
    assert jb.stats.resyncs == 1


def frames_of(samples: np.ndarray, t0: float = 100.0) -> list[AudioFrame]:
    return [AudioFrame(f.samples, RATE, t0 + i * 0.02) for i, f in enumerate(split_frames(samples, RATE))]


def run_detector(samples: np.ndarray, settings: VadSettings) -> list[object]:
    det = TurnDetector(settings, RATE)
    events: list[object] = []
    for f in frames_of(samples):
        events += det.push(f)
    return events


def test_speech_then_silence_gives_one_utterance_after_the_hangover() -> None:
    words = speech("Bonjour, j'ai une fuite d'eau.")
    signal = np.concatenate([np.zeros(RATE // 2, np.int16), words, np.zeros(RATE * 2, np.int16)])
    events = run_detector(signal, VadSettings(hangover_ms=500, pause_ms=0))
    assert [type(e) for e in events] == [SpeechStarted, UtteranceEnded]
    end = events[1]
    assert isinstance(end, UtteranceEnded)
    true_end = 100.0 + (RATE // 2 + len(words)) / RATE
    assert abs(end.ended_at - true_end) <= 0.1
    assert abs(end.decided_at - end.ended_at - 0.5) <= 0.021


def test_a_short_pause_is_reported_once_and_the_utterance_can_end_there() -> None:
    """At pause_ms of silence the detector reports the pause (once), with the utterance so far; ended
    there (`end_now`), the utterance is what the hangover would have given, decided 500 ms sooner.
    Without the decision, the hangover ends it as before."""
    words = speech("Oui, c'est bien ça.")
    signal = np.concatenate([np.zeros(RATE // 2, np.int16), words, np.zeros(RATE * 2, np.int16)])
    frames = frames_of(signal)
    late = run_detector(signal, VadSettings(pause_ms=200))
    assert [type(e) for e in late if not isinstance(e, Paused)] == [SpeechStarted, UtteranceEnded]
    paused = [e for e in late if isinstance(e, Paused)]
    assert len(paused) >= 1 and paused[-1].frames
    det = TurnDetector(VadSettings(pause_ms=200), RATE)
    ended: UtteranceEnded | None = None
    for f in frames:
        for e in det.push(f):
            if isinstance(e, Paused) and e.at >= paused[-1].at:
                ended = det.end_now(e.started_at, f.timestamp + 0.02)
        if ended is not None:
            break
    full = next(e for e in late if isinstance(e, UtteranceEnded))
    assert ended is not None and ended.ended_at == full.ended_at
    assert [f.timestamp for f in ended.frames] == [f.timestamp for f in full.frames]
    assert abs((full.decided_at - ended.decided_at) - 0.5) <= 0.021
    assert det.end_now(ended.started_at, 200.0) is None  # already ended: nothing twice


def test_a_pause_decided_after_the_caller_spoke_again_does_not_cut_them() -> None:
    """The decision takes a few ms; a caller who started again meanwhile is not cut (even one frame)."""
    words = speech("zéro six")
    gap = np.zeros(int(RATE * 0.3), np.int16)
    signal = np.concatenate([np.zeros(RATE // 2, np.int16), words, gap, words, np.zeros(RATE, np.int16)])
    det = TurnDetector(VadSettings(pause_ms=200), RATE)
    first: Paused | None = None
    for f in frames_of(signal):
        events = det.push(f)
        first = first or next((e for e in events if isinstance(e, Paused)), None)
        if first is not None and det.is_voiced(f):
            assert det.end_now(first.started_at, f.timestamp) is None
            break
    else:
        raise AssertionError("the caller never spoke again after the pause")


def test_pause_ms_must_be_shorter_than_the_hangover() -> None:
    from agent.config import _parse_media
    from agent.yamlnode import ConfigError, Node

    with pytest.raises(ConfigError, match="pause_ms"):
        _parse_media(Node("standardiste.yaml", "media", {"vad": {"pause_ms": 800, "hangover_ms": 700}}))


def test_a_caller_speaking_ten_minutes_without_a_pause_is_cut_into_bounded_utterances() -> None:
    """10 minutes of speech with no pause the hangover would take as an end: utterances of at most
    max_utterance_ms, one after the other, each answered; nothing grows with the call's length."""
    words = speech("Alors voilà je vous explique tout depuis le début et sans m'arrêter")
    voiced = words[np.abs(words.astype(int)) > 200]  # its pauses taken out: one endless sentence
    talk = np.tile(voiced, -(-RATE * 600 // len(voiced)))[: RATE * 600]
    events = run_detector(np.concatenate([talk, np.zeros(RATE * 2, np.int16)]), VadSettings())
    ended = [e for e in events if isinstance(e, UtteranceEnded)]
    assert 19 <= len(ended) <= 25, len(ended)  # ~600 s / 30 s, and the last piece at the real pause
    assert all(len(e.frames) * 20 <= 30000 for e in ended)
    assert sum(len(e.frames) for e in ended) * 0.02 >= 590  # the whole 10 minutes reach the recogniser


def test_the_recogniser_gets_the_audio_just_before_the_first_voiced_frame() -> None:
    """The onset of a word is often under the VAD's threshold: up to pre_roll_ms of what came
    before the utterance is kept for the recogniser, and only that much."""
    words = speech("Allô, bonjour.")
    signal = np.concatenate([np.zeros(RATE, np.int16), words, np.zeros(RATE, np.int16)])
    for pre_roll_ms, expected in ((200, 10), (0, 0), (2000, None)):
        det = TurnDetector(VadSettings(pre_roll_ms=pre_roll_ms), RATE)
        frames = frames_of(signal)
        for f in frames:
            if det.push(f) and det.in_speech:
                first = det.utterance_frames[0]
                lead = det.lead_in
                index = next(k for k, g in enumerate(frames) if g is first)
                # Contiguous with the utterance, ending right before its first frame.
                assert [g.timestamp for g in lead] == [g.timestamp for g in frames[index - len(lead):index]]
                if expected is None:  # more asked for than the buffer holds: what it holds, no more
                    assert 10 < len(lead) <= 2000 // 20 + VadSettings().start_window
                else:
                    assert len(lead) == expected
                break
        else:
            raise AssertionError("no speech started")


def test_an_utterance_right_after_another_gets_its_pre_roll_too() -> None:
    """A caller who goes on just after the hangover ended their last utterance: the silence that
    ended it is the audio just before the new one, and the recogniser gets its pre-roll from it."""
    words = speech("Allô, bonjour.")
    gap = np.zeros(int(RATE * 0.76), np.int16)  # the 0.7 s hangover, then speech again 60 ms later
    signal = np.concatenate([np.zeros(RATE, np.int16), words, gap, words, np.zeros(RATE, np.int16)])
    det = TurnDetector(VadSettings(), RATE)
    frames = frames_of(signal)
    leads: list[tuple[AudioFrame, ...]] = []
    starts: list[AudioFrame] = []
    for f in frames:
        if any(isinstance(e, SpeechStarted) for e in det.push(f)):
            leads.append(det.lead_in)
            starts.append(det.utterance_frames[0])
    assert len(leads) == 2
    index = next(k for k, g in enumerate(frames) if g is starts[1])
    assert [g.timestamp for g in leads[1]] == [g.timestamp for g in frames[index - 10:index]]


def test_clicks_and_line_hiss_are_not_speech() -> None:
    rng = np.random.default_rng(2)
    signal = rng.normal(0, 80, RATE * 4)  # hiss about -52 dBFS
    for at in (0.5, 1.3, 2.2, 3.1):  # 2 ms clicks, loud
        signal[int(at * RATE):int(at * RATE) + 16] = 25000
    events = run_detector(np.clip(signal, -32768, 32767).astype(np.int16), VadSettings())
    assert events == []


def test_rtp_socket_drops_foreign_senders() -> None:
    async def scenario() -> tuple[int, int]:
        got: list[bytes | None] = []
        sock = await RtpSocket.open("127.0.0.1", 0, lambda p, t: got.append(p))
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        sock.remote = peer.getsockname()
        for i in range(5):
            peer.sendto(rtp(i).encode(), sock.local_address)
            stranger.sendto(rtp(i + 100).encode(), sock.local_address)
        await asyncio.sleep(0.2)
        sock.close()
        peer.close()
        stranger.close()
        return len(got), sock.stats.dropped_foreign

    delivered, foreign = asyncio.run(scenario())
    assert (delivered, foreign) == (5, 5)


def test_barge_in_needs_voiced_frames_louder_than_our_echo_after_the_guard() -> None:
    from agent.audio.barge_in import BargeIn, BargeInSettings

    rule = BargeIn(BargeInSettings(min_frames=2, guard_ms=150, echo_return_loss_db=12.0))
    assert not rule.heard(5000, True, 1.0)  # we are not speaking: nothing to stop
    rule.speaking(10.0)
    for _ in range(15):
        rule.sent(4000.0)  # our prompt, at RMS 4000: its echo is at most 4000 x 10^(-12/20) = 1005
    assert not rule.heard(5000, True, 10.1) and not rule.heard(5000, True, 10.12)  # in the guard
    assert not rule.heard(900, True, 10.2) and not rule.heard(900, True, 10.22)  # the echo's level
    assert not rule.heard(3000, False, 10.24) and not rule.heard(3000, True, 10.26)  # unvoiced breaks a run
    assert rule.heard(3000, True, 10.28)  # two voiced frames louder than the echo: barge-in
    assert not rule.heard(3000, True, 10.3)  # once
    rule.speaking(None)
    assert not rule.heard(3000, True, 11.0) and not rule.heard(3000, True, 11.02)


def test_what_is_heard_around_our_speech_is_a_turn_the_rest_of_the_last_or_our_echo() -> None:
    from agent.audio.barge_in import Heard, OurSpeech, heard_over

    join = 0.7
    # "Jean" ended early at 10.0; we began speaking at 10.1.
    played = OurSpeech(10.1, 12.0, interrupted=False)
    cut = OurSpeech(10.1, None, interrupted=True)
    # "Martin" before anything of ours could be heard: the rest of "Jean".
    assert heard_over(10.05, 10.5, 10.0, played, join) is Heard.CONTINUES
    # "Martin" over our speech, interrupting it (the reply, or only the "D'accord." before it).
    assert heard_over(10.5, 10.9, 10.0, cut, join) is Heard.CONTINUES
    # The same sound over our speech, not interrupting it, ended before we did: our echo.
    assert heard_over(10.5, 10.9, 10.0, played, join) is Heard.ECHO
    # Past the hangover after an early end, or after a turn ended by the hangover: a turn of its own.
    assert heard_over(10.8, 11.5, 10.0, cut, join) is Heard.TURN
    assert heard_over(10.05, 10.5, None, played, join) is Heard.TURN
    # Begun while we spoke, but still going on after we ended: the caller, not the echo.
    assert heard_over(11.5, 12.4, None, played, join) is Heard.TURN
    # Begun after we ended: a turn.
    assert heard_over(12.5, 13.0, 10.0, played, join) is Heard.TURN
