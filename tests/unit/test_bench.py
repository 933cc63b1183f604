"""Issue 12: the bench's own parsing and statistics, on synthetic captures and traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.audio.g711 import ulaw_encode
from agent.bench.pcap import Datagram, PcapError, read_pcap, write_pcap
from agent.bench.report import build_summary, comparisons, comparisons_table, goals_table, hot_path, verdicts
from agent.bench.stats import (
    clock_offset,
    late_frames,
    percentile,
    stage_breakdown,
    turns,
)
from agent.bench.wire import sip_calls

PHONE = ("127.0.0.1", 40000)
PHONE_SIP = ("127.0.0.1", 5070)
ASTERISK_SIP = ("127.0.0.1", 5060)
ASTERISK_RTP = ("127.0.0.1", 10000)


def test_percentiles_interpolate_and_say_when_there_is_nothing() -> None:
    assert percentile([], 50) is None
    assert percentile([100.0], 95) == 100.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_late_frames_are_gaps_over_40_ms_whatever_the_order() -> None:
    arrivals = [i * 0.02 for i in range(100)]
    assert late_frames(arrivals).late == 0
    stalled = arrivals[:50] + [t + 0.07 for t in arrivals[50:]]  # one 90 ms gap
    gaps = late_frames(list(reversed(stalled)))
    assert (gaps.late, round(gaps.max_gap_s, 3), gaps.packets) == (1, 0.09, 100)
    assert late_frames([0.0, 0.039, 0.078]).late == 0  # jitter under the threshold is not late
    assert late_frames([1.0]).late == 0


def test_clock_offset_is_the_median_of_the_readings() -> None:
    # Monotonic vs unix readings; one of them taken late (a descheduled reader) must not move it.
    pairs = [(10.0, 1_700_000_010.0), (11.0, 1_700_000_011.0), (12.0, 1_700_000_012.3), (13.0, 1_700_000_013.0)]
    assert clock_offset(pairs) == pytest.approx(1_700_000_000.0)
    with pytest.raises(ValueError):
        clock_offset([])


def _stream(start: float, end: float, audible: list[tuple[float, float]]) -> list[tuple[float, bool]]:
    """Packets every 20 ms from start to end, audible within the given spans."""
    times = [round(start + i * 0.02, 3) for i in range(round((end - start) / 0.02))]
    return [(t, any(a <= t < b for a, b in audible)) for t in times]


def test_turns_run_from_the_callers_last_sound_to_the_first_reply_heard() -> None:
    # The phone speaks 2.0-3.5 s and 10.0-11.0 s; the receptionist replies at 4.3 s and 11.6 s.
    said = _stream(0.0, 14.0, [(2.0, 3.5), (10.0, 11.0)])
    heard = _stream(0.0, 14.0, [(0.2, 1.5), (4.3, 8.0), (11.6, 13.0)])
    found = turns(said, heard, [(2.0, 3.52), (10.0, 11.02)])
    assert [round(t.speech_end, 2) for t in found] == [3.48, 10.98]
    assert [round(t.latency_s or 0, 2) for t in found] == [0.82, 0.62]
    # No reply before the next turn: that turn is counted unanswered, not timed against a later one.
    silent = _stream(0.0, 14.0, [(0.2, 1.5), (11.6, 13.0)])
    assert turns(said, silent, [(2.0, 3.52), (10.0, 11.02)])[0].reply_at is None


def test_stage_breakdown_splits_a_turn_and_ignores_the_previous_turns_marks() -> None:
    marks = [("answered", 0.1), ("end_of_utterance", 1.0), ("asr_final", 1.1), ("policy_done", 1.12),
             ("tts_first_audio", 1.3), ("reply_first_frame", 1.32),
             ("end_of_utterance", 5.7), ("asr_final", 5.85), ("policy_done", 5.86), ("tts_first_audio", 6.0),
             ("reply_first_frame", 6.02)]
    got = stage_breakdown(marks, speech_end=5.0, heard_at=6.05)
    assert {k: round(v, 3) for k, v in got.items()} == {
        "end_of_utterance": 0.7, "asr_final": 0.15, "policy_done": 0.01, "tts_first_audio": 0.14,
        "reply_first_frame": 0.02, "transport": 0.03}
    assert sum(got.values()) == pytest.approx(1.05)
    assert "transport" not in stage_breakdown(marks, speech_end=5.0, heard_at=None)


def _rtp(seq: int, samples: np.ndarray) -> bytes:
    return bytes([0x80, 0]) + seq.to_bytes(2, "big") + (seq * 160).to_bytes(4, "big") + b"\0\0\0\1" + \
        ulaw_encode(samples)


def _sip(first_line: str, call_id: str, cseq: str, body: str = "") -> bytes:
    return (f"{first_line}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def test_a_capture_gives_each_call_its_invite_answer_and_audio(tmp_path: Path) -> None:
    sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40000 RTP/AVP 0\r\n"
    tone = (3000 * np.sin(np.arange(160) / 3)).astype(np.int16)
    quiet = np.zeros(160, np.int16)
    packets = [
        Datagram(100.000, PHONE_SIP, ASTERISK_SIP, _sip("INVITE sip:s@127.0.0.1 SIP/2.0", "abc", "1 INVITE", sdp)),
        Datagram(100.002, ASTERISK_SIP, PHONE_SIP, _sip("SIP/2.0 401 Unauthorized", "abc", "1 INVITE")),
        Datagram(100.004, PHONE_SIP, ASTERISK_SIP, _sip("INVITE sip:s@127.0.0.1 SIP/2.0", "abc", "2 INVITE", sdp)),
        Datagram(100.020, ASTERISK_SIP, PHONE_SIP, _sip("SIP/2.0 100 Trying", "abc", "2 INVITE")),
        Datagram(100.050, ASTERISK_SIP, PHONE_SIP, _sip("SIP/2.0 200 OK", "abc", "2 INVITE")),
        Datagram(100.060, ASTERISK_RTP, PHONE, _rtp(1, quiet)),
        Datagram(100.080, ASTERISK_RTP, PHONE, _rtp(2, tone)),
        Datagram(100.081, PHONE, ASTERISK_RTP, _rtp(1, tone)),
        Datagram(100.090, ("127.0.0.1", 9999), ("127.0.0.1", 9998), _rtp(1, tone)),  # another flow
        Datagram(101.000, ASTERISK_SIP, PHONE_SIP, _sip("SIP/2.0 200 OK", "abc", "3 BYE")),
    ]
    path = tmp_path / "c.pcap"
    write_pcap(path, packets)
    read = list(read_pcap(path))
    assert [round(d.at, 3) for d in read] == [d.at for d in packets] and read[5].payload == packets[5].payload
    calls = sip_calls(read)
    call = calls["abc"]
    assert (call.invite_at, call.ok_at, call.rtp) == (100.0, 100.05, PHONE)
    assert [(round(t, 3), a) for t, a in call.heard] == [(100.06, False), (100.08, True)]
    assert [(round(t, 3), a) for t, a in call.said] == [(100.081, True)]


def test_a_file_that_is_not_a_pcap_is_refused_and_a_cut_one_ends_at_its_last_record(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)  # pcapng
    with pytest.raises(PcapError, match="not a pcap"):
        list(read_pcap(bad))
    whole = tmp_path / "w.pcap"
    write_pcap(whole, [Datagram(1.0, PHONE, ASTERISK_RTP, b"a" * 50), Datagram(2.0, PHONE, ASTERISK_RTP, b"b" * 50)])
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole.read_bytes()[:-10])
    assert [d.payload[:1] for d in read_pcap(cut)] == [b"a"]


def _phase(calls: int, p50: float, p95: float, late: int = 0, pipeline: str = "streaming",
           burst: int = 0, name: str = "", against: str = "", answer: float = 120.0) -> dict[str, object]:
    return {"name": name, "pipeline": pipeline, "concurrent_calls": calls, "burst_calls": burst,
            "calls_answered": calls, "turn_ms": {"p50": p50, "p95": p95}, "reply_ms": {"p95": p95 + 100.0},
            "late_frames": late, "turns_unanswered": 0,
            "answer_ms": {"p95": answer}, "burst_answer_ms": {"p95": 140.0 if burst else None},
            "acknowledgements": 1, "against": against, "change": "the former way" if against else ""}


def test_the_summary_finds_the_highest_level_holding_the_target_and_the_naive_ratio() -> None:
    phases = [_phase(1, 780.0, 900.0), _phase(1, 2600.0, 3100.0, pipeline="naive"), _phase(4, 800.0, 1000.0),
              _phase(8, 850.0, 1150.0), _phase(12, 900.0, 1190.0, late=2), _phase(16, 1400.0, 2000.0),
              _phase(8, 800.0, 1000.0, burst=8)]
    s = build_summary(phases)  # type: ignore[arg-type]
    assert s["max_calls_within_target"] == 8  # 12 holds the latency but had late frames
    assert s["naive_ratio"] == pytest.approx(780 / 2600)
    assert (s["turn_ms_p50"], s["turn_ms_p95"], s["answer_ms_p95"]) == (780.0, 900.0, 140.0)
    lines = verdicts(s)
    assert lines[1].endswith("OVER TARGET") and "OVER" not in lines[0] and lines[3].endswith("UNDER TARGET")
    table = goals_table(s).splitlines()
    assert table[2].split()[-1] == "ok" and "140" in table[2]  # the burst's answer p95
    assert table[3].endswith("OVER TARGET") and table[5].endswith("UNDER TARGET") and table[6].endswith("ok")


def test_compared_phases_are_paired_with_the_products_and_left_out_of_the_goals() -> None:
    phases = [_phase(1, 780.0, 900.0, name="1-call"),
              _phase(1, 700.0, 800.0, name="1-call-old", against="1-call", answer=300.0),
              _phase(1, 2600.0, 3100.0, pipeline="naive", name="naive"),
              _phase(8, 3000.0, 9000.0, late=50, burst=8, name="8-old", against="8"),
              _phase(8, 800.0, 1000.0, burst=8, name="8")]
    s = build_summary(phases)  # type: ignore[arg-type]
    assert (s["turn_ms_p50"], s["answer_ms_p95"], s["levels_measured"]) == (780.0, 140.0, [1])
    rows = comparisons(phases)  # type: ignore[arg-type]
    assert [(r["before_phase"], r["after_phase"]) for r in rows] == [("1-call-old", "1-call"), ("8-old", "8")]
    assert rows[0]["figures"]["answer p95 ms"] == {"before": 300.0, "after": 120.0}
    assert rows[1]["figures"]["late frames"] == {"before": 50, "after": 0}
    assert rows[1]["figures"]["reply p95 ms"] == {"before": 9100.0, "after": 1100.0}
    assert rows[1]["figures"]["answer p95 ms"]["after"] == 140.0  # a burst phase: its burst's answers
    table = comparisons_table(rows).splitlines()
    assert table[0] == "the former way (1-call-old -> 1-call):" and table[1].split() == ["answer", "p95", "ms",
                                                                                         "300", "->", "120"]


def test_the_concurrent_calls_play_the_seed_and_the_plombier_corpus() -> None:
    from agent.bench.__main__ import QUICK_TURNS, corpus

    full, quick = corpus(False), corpus(True)
    assert full[0][0].startswith("Oui bonjour, j'ai une fuite d'eau")  # the seed's call first
    assert len(full) >= 6 and len(quick) == len(full)
    assert all(t.strip() for script in full for t in script)  # a silent caller has no turn to time
    assert not any("zéro six" in t for script in full for t in script)  # masked-number scenarios left out
    assert max(map(len, full)) > QUICK_TURNS >= max(map(len, quick))


def test_the_hot_path_sums_py_spy_stacks_by_their_innermost_frame(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text("main (x.py:1);feed (/r/agent/asr/vosk_engine.py:90);AcceptWaveform (vosk/__init__.py:1) 30\n"
                   "main (x.py:1);_send_loop (/r/agent/telephony/media.py:360) 10\n"
                   "main (x.py:1);select (selectors.py:1) 60\n")
    hot = hot_path(raw, 8)
    assert hot is not None and hot["samples"] == 100
    assert hot["top"][0] == ("select (selectors.py:1)", 0.6)
    assert hot["top"][1][0].startswith("AcceptWaveform") and "vosk_engine.py" in hot["top"][1][0]


def test_a_cut_off_is_an_end_decided_while_the_phone_still_says_its_turn_and_a_turn_never_ended_is_unheard() -> None:
    from agent.bench.calls import _figures
    from agent.bench.wire import WireCall

    wire = WireCall("c1", invite_at=99.9, ok_at=100.0)
    phoned = {"number": "+33600000000", "confirmed": True, "turns_planned": 3,
              "spoken": [[5.0, 7.0], [15.0, 15.5], [25.0, 25.4]]}  # the phone's clock: offset 100 s
    marks = [("answered", 0.0), ("end_of_utterance", 5.8),  # "Jean | Martin": ended at the pause
             ("end_of_utterance", 7.6), ("end_of_utterance", 15.95),  # the rest, then the next turn
             ("end_of_utterance", 6.95)]  # within CUT_MARGIN_S of the turn's end: its end, not a cut
    out = _figures(phoned, wire, marks, offset=100.0, burst=False)
    assert (out.cut_offs, out.turns_unheard, out.utterances) == (1, 1, 4)  # the third turn was never taken


def test_a_voice_message_part_is_timed_apart_from_the_conversation_turns() -> None:
    """Message mode waits `next_turn_wait_seconds` after each part of a voice message for more of
    it, by design: that wait is reported as `message_end_ms`, not as a turn."""
    from agent.bench.calls import _figures
    from agent.bench.wire import WireCall

    def packets(start: float, end: float) -> list[tuple[float, bool]]:
        return [(start + i * 0.02, True) for i in range(int((end - start) / 0.02) + 1)]

    wire = WireCall("c1", invite_at=99.9, ok_at=100.0)
    wire.said = packets(105.0, 107.0) + packets(115.0, 116.0)
    wire.heard = packets(107.8, 109.0) + packets(119.0, 120.0)  # a reply, then the goodbye
    phoned = {"number": "+33600000000", "confirmed": True, "turns_planned": 2, "spoken": [[5.0, 7.0], [15.0, 16.0]]}
    marks = [("answered", 0.0), ("end_of_utterance", 7.5), ("asr_final", 7.6),
             ("end_of_utterance", 16.3), ("voice_message_part", 16.3)]
    out = _figures(phoned, wire, marks, offset=100.0, burst=False)
    assert [round(t) for t in out.turn_ms] == [800]
    assert [round(t) for t in out.message_end_ms] == [3000]
    assert len(out.stages_ms) == 1
    no_trace = _figures(phoned, wire, None, offset=100.0, burst=False)
    assert [round(t) for t in no_trace.turn_ms] == [800, 3000]  # without the receptionist's trace: all turns
