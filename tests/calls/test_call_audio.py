"""Issue 3: the call's audio through a real Asterisk and a real SIP phone (pjsua2).

The controller runs inside the test process (tests/harness.py) so the test can read the call's
media, trace and counters; the phone runs in the same process, so both share time.monotonic().
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.audio.barge_in import BargeInSettings
from agent.audio.frames import split_frames
from agent.audio.g711 import ulaw_decode, ulaw_encode
from agent.audio.vad import UtteranceEnded, VadSettings
from agent.telephony.call import Call, CallerGone
from agent.telephony.media import MediaSettings
from tests.harness import InProcessAgent
from tests.signals import RATE, align, frame_rms, speech, tone_mix, window_nccs, write_wav

ANSWER_S = 10.0
HANGOVER_MS = 600
EOU_TOLERANCE_S = 0.12
"""End-of-utterance: each decision's speech start/end within 6 frames of the truth, and the decision
itself `hangover` after the true end within the same tolerance."""
BARGE_IN_BUDGET_S = 0.100
IPDV_MEAN_MAX_MS = 5.0
IPDV_MAX_MS = 40.0
"""Inter-arrival delay variation the caller may see on our prompt: 5 ms on average, never two frames."""
TIME_BASE_SHIFTS_ALLOWED = 2
"""Every 0.1 s piece of a prompt must reach the phone intact (NCC >= 0.9, within 20 ms of where it
is due) but for two: the phone's media path once shifts its time base by 10 ms about a second into
a call (seen every run, with no loss and no jitter-buffer discard reported); the piece that holds
the shift correlates poorly though nothing is missing. Gaps are checked separately (no hole)."""


@pytest.fixture
def agent_factory() -> Iterator[Any]:
    made: list[InProcessAgent] = []

    def make(ast: Any, script: Any, **media: Any) -> InProcessAgent:
        agent = InProcessAgent(ast, script, MediaSettings(**{"keep_heard": True, **media})).start()
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()


async def until_gone(call: Call) -> None:
    await call._unless_gone(asyncio.sleep(120))


def g711(x: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(x))


def wait_finished(agent: InProcessAgent, count: int = 1, timeout: float = 15.0) -> Call:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        calls = agent.finished_calls()
        if len(calls) >= count:
            return calls[-1]
        time.sleep(0.05)
    raise AssertionError("the agent never finished the call")


def heard_by_agent(call: Call) -> tuple[np.ndarray, float]:
    """The caller audio the agent received, and the media-clock time of its first sample."""
    assert call.media is not None
    frames = list(call.media.heard)
    return np.concatenate([f.samples for f in frames]), frames[0].timestamp


def wav_clock(call: Call, wav: np.ndarray, skip_s: float = 1.0) -> float:
    """Agent time (monotonic s) at which the phone's file started: the agent's received audio is
    aligned with the file, leaving out its first `skip_s` (the line may not be up yet)."""
    heard, t0 = heard_by_agent(call)
    lag, ncc = align(heard, g711(wav[int(skip_s * RATE):]))
    assert ncc > 0.8, f"the caller's file is not in what the agent heard (NCC {ncc:.2f})"
    return t0 + lag / RATE - skip_s


def holes(received: np.ndarray, reference: np.ndarray) -> int:
    """20 ms frames where the reference is loud and the received copy is not: lost audio."""
    r, x = frame_rms(reference), frame_rms(received)
    n = min(len(r), len(x))
    return int(((r[:n] > 1000) & (x[:n] < 0.3 * r[:n])).sum())


def place_call(phones: Any, softphone: Any, ast: Any, tmp_path: Path, play: np.ndarray | None = None,
               **kw: Any) -> Any:
    wav = None
    if play is not None:
        wav = tmp_path / "caller.wav"
        write_wav(wav, play, RATE)
    call = phones.call(softphone, ast.sip_uri, tmp_path / "phone-heard.wav", play=wav, **kw)
    assert phones.wait_until(lambda: call.confirmed or call.ended, ANSWER_S)
    assert call.confirmed, f"not answered (SIP {call.status})"
    return call


def test_caller_audio_reaches_the_agent_intact(asterisk, agent_factory, phones, softphone, tmp_path: Path) -> None:
    agent = agent_factory(asterisk, until_gone)
    ref = np.concatenate([tone_mix(3.0), speech("Bonjour, j'ai une fuite sous l'évier de la cuisine."),
                          tone_mix(1.0)])
    wav = np.concatenate([np.zeros(RATE // 2, np.int16), ref, np.zeros(RATE, np.int16)])
    call = place_call(phones, softphone, asterisk, tmp_path, play=wav)
    phones.pump(len(wav) / RATE + 0.5)
    call.hang_up()
    done = wait_finished(agent)
    heard, _ = heard_by_agent(done)
    lag, ncc = align(heard, g711(ref))
    assert ncc >= 0.9, f"normalised cross-correlation {ncc:.3f}"
    assert holes(heard[lag:lag + len(ref)], ref) == 0
    assert done.media is not None and done.media.stats.lost == 0
    assert done.media.stats.dropped == 0


def test_agent_prompt_reaches_the_caller_without_gaps_or_bursts(asterisk, agent_factory, phones, softphone,
                                                                tmp_path: Path) -> None:
    prompt = tone_mix(10.0)
    results: dict[str, Any] = {}

    async def script(call: Call) -> None:
        results["completed"] = await call.say(split_frames(prompt, RATE))
        await until_gone(call)

    agent = agent_factory(asterisk, script)
    call = place_call(phones, softphone, asterisk, tmp_path)
    phones.pump(len(prompt) / RATE + 1.0)
    stats = call.rx_stats()
    call.hang_up()
    wait_finished(agent)
    assert results["completed"] is True
    heard = call.heard()
    lag, _ = align(heard, g711(prompt))
    nccs = window_nccs(heard, g711(prompt), lag)
    damaged = [(i, round(n, 3)) for i, n in enumerate(nccs) if n < 0.9]  # (100 ms window, NCC)
    assert len(damaged) <= TIME_BASE_SHIFTS_ALLOWED, (damaged, len(nccs), stats)
    assert holes(heard[lag:lag + len(prompt)], prompt) == 0
    assert stats["loss"] == 0, stats
    assert stats["ipdv_mean_ms"] <= IPDV_MEAN_MAX_MS, stats
    assert stats["ipdv_max_ms"] <= IPDV_MAX_MS, stats


def test_end_of_utterance_decisions_fall_within_tolerance(asterisk, agent_factory, phones, softphone,
                                                          tmp_path: Path) -> None:
    phrases = ["Bonjour, je vous appelle pour une fuite.", "Oui, c'est au premier étage.",
               "Mon numéro est le zéro six douze trente-quatre."]
    rng = np.random.default_rng(7)
    parts: list[np.ndarray] = [np.zeros(RATE, np.int16)]
    truth: list[tuple[float, float]] = []
    pos = RATE
    for i, text in enumerate(phrases):
        s = speech(text)
        truth.append((pos / RATE, (pos + len(s)) / RATE))
        gap = np.zeros(int((1.5 + 0.5 * i) * RATE), np.int16)
        gap[RATE // 2:RATE // 2 + 16] = 20000  # a 2 ms click in each silence
        parts += [s, gap]
        pos += len(s) + len(gap)
    wav = np.concatenate(parts)
    wav = np.clip(wav + rng.normal(0, 60, len(wav)), -32768, 32767).astype(np.int16)  # line hiss
    utterances: list[UtteranceEnded] = []

    async def script(call: Call) -> None:
        while True:
            utt = await call.listen(60)
            if utt is not None:
                utterances.append(utt.ended)

    agent = agent_factory(asterisk, script, vad=VadSettings(hangover_ms=HANGOVER_MS))
    call = place_call(phones, softphone, asterisk, tmp_path, play=wav)
    phones.pump(len(wav) / RATE + 0.5)
    call.hang_up()
    done = wait_finished(agent)
    file_start = wav_clock(done, wav)

    def agent_time(wav_s: float) -> float:
        return file_start + wav_s

    assert len(utterances) == len(phrases), [(u.started_at, u.ended_at) for u in utterances]
    for utt, (start, end) in zip(utterances, truth, strict=True):
        assert abs(utt.started_at - agent_time(start)) <= EOU_TOLERANCE_S
        assert abs(utt.ended_at - agent_time(end)) <= EOU_TOLERANCE_S
        late = utt.decided_at - agent_time(end)
        assert abs(late - HANGOVER_MS / 1000) <= EOU_TOLERANCE_S, late


def test_caller_speaking_over_a_prompt_stops_it(asterisk, agent_factory, phones, softphone, tmp_path: Path) -> None:
    prompt = tone_mix(12.0)
    results: dict[str, Any] = {}

    async def script(call: Call) -> None:
        results["completed"] = await call.say(split_frames(prompt, RATE))
        results["stopped_at"] = time.monotonic()
        results["utterance"] = await call.listen(10)
        await until_gone(call)

    agent = agent_factory(asterisk, script)
    speak_at = 3.0
    words = speech("Allô, excusez-moi, c'est urgent, j'ai de l'eau partout.")
    wav = np.concatenate([np.zeros(int(speak_at * RATE), np.int16), words, np.zeros(2 * RATE, np.int16)])
    call = place_call(phones, softphone, asterisk, tmp_path, play=wav)
    phones.pump(len(wav) / RATE + 0.5)
    call.hang_up()
    done = wait_finished(agent)
    assert results["completed"] is False, "the prompt was not interrupted"
    assert results["utterance"] is not None and isinstance(results["utterance"].ended, UtteranceEnded), \
        "the caller did not get the turn"
    assert done.media is not None

    # Agent side: from the caller's first word arriving to our last frame sent.
    onset_at_agent = wav_clock(done, wav, skip_s=speak_at - 0.5) + speak_at
    barge_in = done.trace.all("barge_in")[0]
    assert barge_in - onset_at_agent <= BARGE_IN_BUDGET_S
    assert done.media.last_speech_sent_at - onset_at_agent <= BARGE_IN_BUDGET_S

    # Caller side: the prompt stops within the budget plus the transport both ways.
    assert call.media_active_at is not None
    rec = call.heard()
    level = frame_rms(rec)
    loud = np.nonzero(level > 0.3 * np.median(level[level > 500]))[0]
    first_heard = call.media_active_at + loud[0] / 50
    last_heard = call.media_active_at + (loud[-1] + 1) / 50
    spoke = call.media_active_at + speak_at
    transport = (onset_at_agent - spoke) + (first_heard - done.trace.all("reply_first_frame")[0])
    assert last_heard - spoke <= BARGE_IN_BUDGET_S + transport + 0.04, (last_heard - spoke, transport)


@pytest.mark.parametrize("gate_db, interrupted", [(12.0, False), (60.0, True)])
def test_echo_of_our_own_prompt_does_not_barge_in(asterisk, agent_factory, phones, softphone, tmp_path: Path,
                                                  gate_db: float, interrupted: bool) -> None:
    """The phone returns what it hears at -20 dB (a line echo). With the echo gate (12 dB) the prompt
    plays to the end; with the gate opened (60 dB) the same echo interrupts it: the echo is real."""
    prompt = np.concatenate([speech("Bonjour, vous êtes bien chez Plomberie Martin."),
                             speech("Je suis l'assistant automatique de l'entreprise."),
                             speech("Décrivez votre demande, elle sera enregistrée.")])
    results: dict[str, Any] = {}

    async def script(call: Call) -> None:
        results["completed"] = await call.say(split_frames(prompt, RATE))
        await until_gone(call)

    agent = agent_factory(asterisk, script, barge_in=BargeInSettings(echo_return_loss_db=gate_db))
    call = place_call(phones, softphone, asterisk, tmp_path, echo_level=0.1)
    assert phones.wait_until(lambda: "completed" in results, len(prompt) / RATE + 5.0)
    call.hang_up()
    wait_finished(agent)
    assert results["completed"] is (not interrupted)


def _udp_packet(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """An IPv4+UDP datagram with a forged source (raw socket; the kernel fills the IP checksum)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    return ip + udp


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(os.geteuid() != 0, reason="forging Asterisk's source address needs a raw socket (root)")
def test_random_and_malformed_packets_are_dropped_and_counted(asterisk, agent_factory, phones, softphone,
                                                             tmp_path: Path) -> None:
    prompt = tone_mix(8.0)
    ready = threading.Event()
    info: dict[str, Any] = {}

    async def script(call: Call) -> None:
        assert call.media is not None and call.media._socket is not None
        info["local"] = call.media._socket.local_address
        info["remote"] = call.media._socket.remote
        info["media"] = call.media
        ready.set()
        info["completed"] = await call.say(split_frames(prompt, RATE))
        await until_gone(call)

    agent = agent_factory(asterisk, script)
    call = place_call(phones, softphone, asterisk, tmp_path)
    assert ready.wait(10)
    rng = np.random.default_rng(3)
    rss_before = _rss_kib()
    gc.collect()
    blocks_before = sys.getallocatedblocks()
    foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    n_foreign, n_malformed, n_wrong_pt = 3000, 1000, 300
    try:
        for i in range(n_foreign):  # random junk from an address that is not Asterisk's
            foreign.sendto(rng.bytes(int(rng.integers(0, 1400))), info["local"])
            if i % 50 == 0:
                phones.pump(0.01)
        for i in range(n_malformed):  # forged as Asterisk: too short, wrong version, bad padding
            kind = i % 3
            if kind == 0:
                data = rng.bytes(int(rng.integers(0, 12)))
            elif kind == 1:
                data = bytes([0x40 | int(rng.integers(0, 64))]) + rng.bytes(171)
            else:
                data = bytes([0xA0, 0]) + rng.bytes(10)  # padding bit, no payload
            raw.sendto(_udp_packet(info["remote"], info["local"], data), (info["local"][0], 0))
            if i % 50 == 0:
                phones.pump(0.01)
        for i in range(n_wrong_pt):  # well-formed RTP with a payload type we did not negotiate
            data = struct.pack("!BBHII", 0x80, 8, i, i * 160, 1234) + rng.bytes(160)
            raw.sendto(_udp_packet(info["remote"], info["local"], data), (info["local"][0], 0))
            if i % 50 == 0:
                phones.pump(0.01)
    finally:
        foreign.close()
        raw.close()
    assert phones.wait_until(lambda: "completed" in info, len(prompt) / RATE + 5.0)
    phones.pump(0.5)
    stats = call.rx_stats()
    call.hang_up()
    wait_finished(agent)
    assert stats["loss"] == 0, stats
    counters = info["media"].stats
    assert counters.dropped_foreign >= n_foreign
    assert counters.dropped_malformed == n_malformed
    assert counters.dropped_payload_type == n_wrong_pt
    assert len(info["media"]._socket.jitter) <= 3
    assert info["completed"] is True
    heard = call.heard()
    lag, _ = align(heard, g711(prompt))
    nccs = window_nccs(heard, g711(prompt), lag)
    damaged = [(i, round(n, 3)) for i, n in enumerate(nccs) if n < 0.9]  # (100 ms window, NCC)
    assert len(damaged) <= TIME_BASE_SHIFTS_ALLOWED, (damaged, len(nccs), stats)
    assert holes(heard[lag:lag + len(prompt)], prompt) == 0, "the call's audio has holes"
    gc.collect()
    blocks = sys.getallocatedblocks() - blocks_before
    print(f"\nRSS growth {_rss_kib() - rss_before} KiB, Python blocks {blocks}")
    # Nothing of the 4300 junk packets is kept: Python's allocated blocks grow by about 1,100 whatever
    # ran before in the process (measured), where one kept object per packet would add 4,300. The RSS
    # bound only catches a gross native leak: the allocator's layout alone moves it by 2.6 to 8.6 MB
    # depending on what earlier tests loaded (the dialogue's tables).
    assert blocks < 2000, f"Python objects kept with the junk: {blocks} blocks"
    assert _rss_kib() - rss_before < 16 * 1024, "memory grew with the junk"


def test_the_caller_leaving_mid_prompt_releases_everything(asterisk, agent_factory, phones, softphone,
                                                           tmp_path: Path) -> None:
    async def script(call: Call) -> None:
        try:
            await call.say(split_frames(tone_mix(20.0), RATE))
        except CallerGone:
            raise

    agent = agent_factory(asterisk, script)
    call = place_call(phones, softphone, asterisk, tmp_path)
    phones.pump(1.5)
    call.hang_up()
    done = wait_finished(agent)
    assert done.outcome == "caller hung up"
    from tests.calls.test_call_foundation import live_channels

    end = time.monotonic() + 5
    while live_channels(asterisk) and time.monotonic() < end:
        time.sleep(0.1)
    assert live_channels(asterisk) == []
    import httpx

    bridges = httpx.get(f"{asterisk.ari_url}/ari/bridges", auth=("standardiste", asterisk.ari_password)).json()
    assert bridges == []
    assert done.media is not None and done.media._socket is not None
    assert done.media._socket.transport is not None and done.media._socket.transport.is_closing()
