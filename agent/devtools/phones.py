"""Real SIP phones for the tests and `make demo`, on pjsua2 (the `pjsua2-python` wheel, a dev
dependency: the service itself never imports this).

One pjsua2 endpoint per test process, driven from the test's own thread (no pjsua2 worker
threads: callbacks run inside `pump()`), with the null sound device. Each call records what it
hears to a WAV file and can play a WAV file as its microphone.
"""

from __future__ import annotations

import gc
import random
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pjsua2 as pj

from agent.devtools.speech import CLOCK_RATE_HZ, SPEECH_RMS, frame_rms


class PhoneCall(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account, record_to: Path, play: Path | None, echo_level: float | None,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.record_to = record_to
        self.play = play
        self.echo_level = echo_level
        """If set, what the phone hears is sent back at this gain (0.1 = -20 dB): a line echo."""
        self.media_active_at: float | None = None
        """time.monotonic() when media started: t = 0 of both the recording and the played file."""
        self.state = pj.PJSIP_INV_STATE_NULL
        self.status = 0
        self.confirmed_at: float | None = None
        self.ended_at: float | None = None
        self.hung_up_locally = False
        self._recorder: pj.AudioMediaRecorder | None = None
        self._player: pj.AudioMediaPlayer | None = None
        self._audio: pj.AudioMedia | None = None
        self._said: list[pj.AudioMediaPlayer] = []
        self.spoken: list[tuple[float, float]] = []
        """(start, end) on time.monotonic() of each file played with `say`."""
        self.remote_uri = ""
        """An incoming call's From (`"name" <sip:number@host>`)."""

    # pjsua2 callbacks (run inside Phones.pump) ----------------------------------------------
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.state = info.state
        self.status = info.lastStatusCode
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended_at = time.monotonic()
            self._close_media()

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for mi in info.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(mi.index)
            self._audio = audio
            if self.media_active_at is None:
                self.media_active_at = time.monotonic()
            if self.echo_level is not None and self._recorder is None:
                audio.adjustRxLevel(self.echo_level)
                audio.startTransmit(audio)
            if self._recorder is None:
                self._recorder = pj.AudioMediaRecorder()
                self._recorder.createRecorder(str(self.record_to))
                audio.startTransmit(self._recorder)
            if self.play is not None and self._player is None:
                self._player = pj.AudioMediaPlayer()
                self._player.createPlayer(str(self.play), pj.PJMEDIA_FILE_NO_LOOP)
                self._player.startTransmit(audio)

    def _close_media(self) -> None:
        # Dropping the recorder closes the WAV file and writes its header.
        self._recorder = None
        self._player = None
        self._said.clear()
        self._audio = None

    def say(self, wav: Path) -> float:
        """Play a WAV (8 kHz mono) into the call now, as the caller speaking; returns its end time."""
        assert self._audio is not None, "no media yet"
        with wave.open(str(wav), "rb") as w:
            seconds = w.getnframes() / w.getframerate()
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(wav), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(self._audio)
        self._said.append(player)
        start = time.monotonic()
        self.spoken.append((start, start + seconds))
        return start + seconds

    def heard_so_far(self) -> np.ndarray:
        """What the phone has heard up to now (the recorder's file as flushed so far)."""
        data = self.record_to.read_bytes() if self.record_to.exists() else b""
        pcm = data[44:]
        return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")

    def press(self, digits: str) -> None:
        """Send DTMF (RFC 4733 events)."""
        self.dialDtmf(digits)

    # test helpers ---------------------------------------------------------------------------
    def rx_stats(self) -> dict[str, float]:
        """RTP receive statistics of the live call (pjmedia's RTCP accounting), in ms and packets."""
        stat = self.getStreamStat(0)
        rx = stat.rtcp.rxStat
        return {"packets": rx.pkt, "loss": rx.loss, "dup": rx.dup, "reorder": rx.reorder,
                "ipdv_mean_ms": stat.rtcp.rxIpdvUsec.mean / 1000, "ipdv_max_ms": stat.rtcp.rxIpdvUsec.max / 1000,
                "jitter_mean_ms": rx.jitterUsec.mean / 1000, "jitter_max_ms": rx.jitterUsec.max / 1000,
                # The phone's own jitter buffer: frames it dropped to cut its latency, and underruns.
                "jb_discard": stat.jbuf.discard, "jb_empty": stat.jbuf.empty, "jb_lost": stat.jbuf.lost}

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def ended(self) -> bool:
        return bool(self.state == pj.PJSIP_INV_STATE_DISCONNECTED)

    @property
    def ended_by_remote(self) -> bool:
        return self.ended and not self.hung_up_locally and self.confirmed

    def hang_up(self) -> None:
        if not self.ended:
            self.hung_up_locally = True
            prm = pj.CallOpParam()
            prm.statusCode = 200 if self.confirmed else 603
            self.hangup(prm)

    def heard(self) -> np.ndarray:
        """What the phone heard, as int16 samples at CLOCK_RATE_HZ (after the call ended)."""
        self._close_media()
        gc.collect()  # the recorder completes its WAV header when its C++ object is destroyed
        data = self.record_to.read_bytes()
        try:
            with wave.open(str(self.record_to), "rb") as w:
                assert w.getframerate() == CLOCK_RATE_HZ
                return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        except (wave.Error, EOFError):
            # Header not completed yet: pjmedia writes a fixed 44-byte header, then 16-bit PCM at
            # the conference clock rate we configured.
            pcm = data[44:]
            return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")


class ArtisanAccount(pj.Account):  # type: ignore[misc]
    """A registered phone that receives calls: answers with `answer_code` after `answer_after_s`
    (200 to pick up, 486 busy), or lets it ring when `answer_code` is None."""

    def __init__(self, phones: Phones, record_dir: Path) -> None:
        super().__init__()
        self.phones = phones
        self.record_dir = record_dir
        self.answer_code: int | None = 200
        self.answer_after_s = 0.5
        self.incoming: list[PhoneCall] = []
        self._due: list[tuple[float, PhoneCall]] = []
        self.registered = False
        self.messages: list[str] = []
        """Bodies of the SIP MESSAGEs (SMS) received."""

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.registered = prm.code == 200 and self.getInfo().regIsActive

    def onInstantMessage(self, prm: pj.OnInstantMessageParam) -> None:
        self.messages.append(prm.msgBody)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = PhoneCall(self, self.record_dir / f"artisan-{len(self.incoming)}.wav", None, None, prm.callId)
        call.remote_uri = call.getInfo().remoteUri  # who the call presents itself as (its caller ID)
        self.incoming.append(call)
        self.phones.calls.append(call)
        self.phones._all_calls.append(call)
        ring = pj.CallOpParam()
        ring.statusCode = 180
        call.answer(ring)
        if self.answer_code is not None:
            self._due.append((time.monotonic() + self.answer_after_s, call))

    def tick(self) -> None:
        now = time.monotonic()
        for due, call in list(self._due):
            if due <= now:
                self._due.remove((due, call))
                if not call.ended:
                    prm = pj.CallOpParam()
                    prm.statusCode = self.answer_code or 200
                    if prm.statusCode >= 300:
                        call.hung_up_locally = True
                        call.hangup(prm)  # reject: 486 Busy Here, 603 Decline
                    else:
                        call.answer(prm)


class Phones:
    """The process's pjsua2 endpoint and the accounts on it."""

    def __init__(self, log_level: int = 1) -> None:
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 32
        cfg.logConfig.level = log_level
        cfg.logConfig.consoleLevel = log_level
        cfg.medConfig.clockRate = CLOCK_RATE_HZ
        cfg.medConfig.sndClockRate = CLOCK_RATE_HZ
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        self.ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = 0
        tcfg.boundAddress = "127.0.0.1"
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        for codec in self.ep.codecEnum2():
            prio = 255 if codec.codecId.startswith("PCMU/") else (200 if codec.codecId.startswith("PCMA/") else 0)
            self.ep.codecSetPriority(codec.codecId, prio)
        self._accounts: list[pj.Account] = []
        self._artisans: list[ArtisanAccount] = []
        self._removed: list[pj.Account] = []
        self.calls: list[PhoneCall] = []
        self._all_calls: list[PhoneCall] = []

    def account(self, server: str, user: str, password: str) -> pj.Account:
        """A non-registering account that answers the server's digest challenges."""
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{server}"
        acfg.regConfig.registrarUri = ""
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        acfg.natConfig.iceEnabled = False
        # A random RTP base per account: phone processes running side by side must not collide.
        acfg.mediaConfig.transportConfig.port = 20000 + 2 * random.randrange(10000)
        acfg.mediaConfig.transportConfig.portRange = 2000
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acc = pj.Account()
        acc.create(acfg)
        self._accounts.append(acc)
        return acc

    def artisan(self, server: str, user: str, password: str, record_dir: Path) -> ArtisanAccount:
        """A registering account that receives calls (the artisan's phone)."""
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{server}"
        acfg.regConfig.registrarUri = f"sip:{server}"
        acfg.regConfig.timeoutSec = 300
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        acfg.natConfig.iceEnabled = False
        acfg.mediaConfig.transportConfig.port = 20000 + 2 * random.randrange(10000)
        acfg.mediaConfig.transportConfig.portRange = 2000
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acc = ArtisanAccount(self, record_dir)
        acc.create(acfg)
        self._accounts.append(acc)
        self._artisans.append(acc)
        return acc

    def remove_account(self, acc: pj.Account) -> None:
        """Free the account's slot (the wheel allows 8 accounts per process)."""
        if acc in self._accounts:
            self._accounts.remove(acc)
            if acc in self._artisans:
                self._artisans.remove(acc)
            acc.shutdown()
            # pjsua reuses account ids, and a pjsua2 Account's destructor deletes whatever account
            # holds its old id then: never let Python destroy it.
            acc.thisown = False
            self._removed.append(acc)

    def call(self, account: pj.Account, uri: str, record_to: Path, play: Path | None = None,
             echo_level: float | None = None, caller_number: str | None = None) -> PhoneCall:
        """Place a call; `caller_number` is presented as P-Asserted-Identity (the way a trunk does)."""
        call = PhoneCall(account, record_to, play, echo_level)
        prm = pj.CallOpParam(True)
        if caller_number:
            header = pj.SipHeader()
            header.hName = "P-Asserted-Identity"
            header.hValue = f"<sip:{caller_number}@127.0.0.1>"
            prm.txOption.headers.append(header)
        call.makeCall(uri, prm)
        self.calls.append(call)
        self._all_calls.append(call)
        return call

    def _handle(self) -> None:
        self.ep.libHandleEvents(10)
        for acc in self._artisans:
            acc.tick()

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._handle()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self._handle()
        return predicate()

    def hang_up_all(self) -> None:
        for call in self.calls:
            call.hang_up()
        self.wait_until(lambda: all(c.ended for c in self.calls), 5.0)
        self.calls.clear()

    def close(self) -> None:
        self.hang_up_all()
        for acc in self._accounts:
            acc.shutdown()
        self._accounts.clear()
        # pjsua2 asserts if a Call object is destroyed after the library: leave them to the OS.
        for call in self._all_calls:
            call.thisown = False
        self.ep.libDestroy()


def agent_quiet(call: PhoneCall, since: float, quiet_s: float) -> bool:
    """The phone heard speech after `since` (monotonic) and then `quiet_s` of silence."""
    if call.media_active_at is None:
        return False
    rms = frame_rms(call.heard_so_far())
    start = max(0, int((since - call.media_active_at) * 50))
    voiced = np.nonzero(rms[start:] > SPEECH_RMS)[0]
    if len(voiced) == 0:
        return False
    return (len(rms) - 1 - (start + int(voiced[-1]))) >= quiet_s * 50


def converse(phones: Phones, call: PhoneCall, wavs: list[Path], *, quiet_s: float = 1.0,
             timeout_s: float = 40.0, on_turn: Callable[[int], None] | None = None,
             interrupt_after_s: float | None = None) -> None:
    """Speak each turn once the receptionist has spoken and gone quiet, as a person would; with
    `interrupt_after_s`, the first turn is said that long into the greeting instead (barge-in)."""
    since = call.media_active_at or time.monotonic()
    for i, wav in enumerate(wavs):
        def ready(t: float = since, first: bool = i == 0) -> bool:
            if first and interrupt_after_s is not None and call.media_active_at is not None:
                return call.ended or time.monotonic() - call.media_active_at >= interrupt_after_s
            return call.ended or agent_quiet(call, t, quiet_s)

        if not phones.wait_until(ready, timeout_s):
            raise TimeoutError(f"the receptionist never finished speaking before turn {i + 1}")
        if call.ended:
            return
        if on_turn is not None:
            on_turn(i)
        end = call.say(wav)
        phones.wait_until(lambda: call.ended, max(0.0, end - time.monotonic()))
        since = end


def turn_latencies(call: PhoneCall, heard: np.ndarray) -> list[float]:
    """For each turn the caller spoke: from its end to the first reply audio heard, seconds."""
    assert call.media_active_at is not None
    rms = frame_rms(heard)
    out = []
    for _, end in call.spoken:
        start = int((end - call.media_active_at) * 50)
        voiced = np.nonzero(rms[start:] > SPEECH_RMS)[0]
        if len(voiced):
            out.append((start + int(voiced[0])) / 50 - (end - call.media_active_at))
    return out
