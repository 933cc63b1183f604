"""Real SIP phones for the tests, on pjsua2 (the `pjsua2-python` wheel).

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

CLOCK_RATE_HZ = 8000


class PhoneCall(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account, record_to: Path, play: Path | None, echo_level: float | None) -> None:
        super().__init__(account)
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
        return self.state == pj.PJSIP_INV_STATE_DISCONNECTED

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

    def remove_account(self, acc: pj.Account) -> None:
        """Free the account's slot (the wheel allows 8 accounts per process)."""
        if acc in self._accounts:
            self._accounts.remove(acc)
            acc.shutdown()

    def call(self, account: pj.Account, uri: str, record_to: Path, play: Path | None = None,
             echo_level: float | None = None) -> PhoneCall:
        call = PhoneCall(account, record_to, play, echo_level)
        prm = pj.CallOpParam(True)
        call.makeCall(uri, prm)
        self.calls.append(call)
        self._all_calls.append(call)
        return call

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ep.libHandleEvents(10)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.ep.libHandleEvents(10)
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


def speech_seconds(samples: np.ndarray, rate: int = CLOCK_RATE_HZ, threshold: float = 300.0) -> float:
    """Seconds of 20 ms frames whose RMS exceeds `threshold` (int16 units): 'non-silent audio'."""
    frame = rate // 50
    n = len(samples) // frame
    if n == 0:
        return 0.0
    frames = samples[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > threshold).sum()) / 50.0
