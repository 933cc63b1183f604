"""Issue 2: a real Asterisk, the ARI controller, a real SIP phone calling in."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from agent.devtools.asterisk import ARI_USER, DevAsterisk
from agent.devtools.speech import CLOCK_RATE_HZ, speech_seconds
from agent.telephony.ari import AriApiMismatch, AriClient
from tests.conftest import REPO

ANSWER_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 40.0


def live_channels(ast: DevAsterisk) -> list[dict]:  # type: ignore[type-arg]
    r = httpx.get(f"{ast.ari_url}/ari/channels", auth=(ARI_USER, ast.ari_password), timeout=5)
    r.raise_for_status()
    return list(r.json())


def wait_no_channels(ast: DevAsterisk, timeout: float = 10.0) -> list[dict]:  # type: ignore[type-arg]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        chans = live_channels(ast)
        if not chans:
            return chans
        time.sleep(0.1)
    return live_channels(ast)


def test_asterisk_has_every_module_and_operation(asterisk: DevAsterisk) -> None:
    assert asterisk.missing_modules() == []

    async def check() -> None:
        ari = AriClient(asterisk.ari_url, ARI_USER, asterisk.ari_password, "standardiste")
        try:
            await ari.check_operations()  # what the controller uses
            with pytest.raises(AriApiMismatch, match=re.escape("POST /channels/{channelId}/teleport")):
                await ari.check_operations([("POST", "/channels/{channelId}/teleport")])
        finally:
            await ari.close()

    asyncio.run(check())


def test_ari_refuses_wrong_password(asterisk: DevAsterisk) -> None:
    r = httpx.get(f"{asterisk.ari_url}/ari/channels", auth=(ARI_USER, "not-the-password"), timeout=5)
    assert r.status_code == 401


def test_call_is_answered_greeted_and_ended_cleanly(asterisk, controller_factory, phones, softphone,
                                                    tmp_path: Path) -> None:
    controller_factory(asterisk).start()
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav")
    assert phones.wait_until(lambda: call.confirmed or call.ended, ANSWER_TIMEOUT_S), "call not answered"
    assert call.confirmed, f"call failed with SIP {call.status}"
    # The controller plays the greeting and then hangs up itself.
    assert phones.wait_until(lambda: call.ended, CALL_TIMEOUT_S), "controller never ended the call"
    assert call.ended_by_remote
    heard = call.heard()
    assert len(heard) > CLOCK_RATE_HZ  # more than a second recorded
    assert speech_seconds(heard) >= 1.5, "the caller heard no greeting"
    # Nothing left behind in Asterisk.
    assert wait_no_channels(asterisk) == []


def test_controller_reconnects_after_asterisk_restart(asterisk, controller_factory, phones, softphone,
                                                      tmp_path: Path) -> None:
    ctl = controller_factory(asterisk).start()
    asterisk.restart()
    ctl.wait_ready(2)  # second connection, same process
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "after-restart.wav")
    assert phones.wait_until(lambda: call.ended, CALL_TIMEOUT_S)
    assert call.ended_by_remote, f"not answered after the restart (SIP {call.status})"
    assert speech_seconds(call.heard()) >= 1.5
    assert ctl.proc is not None and ctl.proc.poll() is None


def test_a_caller_left_by_a_killed_controller_is_handed_to_the_voice_message(asterisk, controller_factory, phones,
                                                                           softphone, tmp_path: Path) -> None:
    first = controller_factory(asterisk).start()
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav")
    assert phones.wait_until(lambda: call.confirmed, ANSWER_TIMEOUT_S)
    phones.pump(1.0)
    first.stop(signal.SIGKILL)  # dies mid-greeting: no clean-up, the channel stays in Stasis
    phones.pump(0.5)
    assert not call.ended
    names = [c["name"] for c in live_channels(asterisk)]
    assert any(n.startswith("UnicastRTP/") for n in names), names  # our media leg, left behind
    second = controller_factory(asterisk).start()
    # The dialplan's voice message takes the rest of the call: prompt, beep, then silence ends it.
    assert phones.wait_until(lambda: call.ended, CALL_TIMEOUT_S), "the caller was never handed over"
    assert call.ended_by_remote
    assert "1 caller(s) handed to the voice message" in second.log()
    assert wait_no_channels(asterisk) == []
    bridges = httpx.get(f"{asterisk.ari_url}/ari/bridges", auth=(ARI_USER, asterisk.ari_password), timeout=5).json()
    assert bridges == [], "the previous run's bridge was not removed"


def test_controller_down_caller_gets_fallback_and_message_is_kept(asterisk, controller_factory, phones,
                                                                   softphone, tmp_path: Path) -> None:
    ctl = controller_factory(asterisk)
    # The fallback prompt is rendered by the same command an integrator runs.
    subprocess.run([str(Path(".venv/bin/standardiste").resolve()), "render-prompts", "--config", str(ctl.config)],
                   check=True, capture_output=True)
    ctl.start()
    assert ctl.stop() == 0  # clean stop: the app's websocket is gone
    prompt_s = wav_seconds(asterisk.prompts / "fallback.wav")
    # The caller speaks once the prompt and the beep are over, then stays silent.
    message = tmp_path / "caller-message.wav"
    _write_speech(message, lead_silence=prompt_s + 1.5, seconds=prompt_s + 6.0)
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav", play=message)
    assert phones.wait_until(lambda: call.confirmed or call.ended, ANSWER_TIMEOUT_S)
    assert call.confirmed, f"fallback did not answer (SIP {call.status})"
    # Asterisk ends the message after 4 s of silence and hangs up by itself.
    assert phones.wait_until(lambda: call.ended, prompt_s + 20.0), "the voice message never ended"
    assert call.ended_by_remote
    assert speech_seconds(call.heard()) >= 3.0, "the caller heard no fallback prompt"
    assert_one_voice_message(asterisk)


def test_stopping_controller_hands_the_caller_to_the_voice_message(asterisk, controller_factory, phones,
                                                                   softphone, tmp_path: Path) -> None:
    ctl = controller_factory(asterisk).start()  # renders the fallback prompt too
    prompt_s = wav_seconds(asterisk.prompts / "fallback.wav")
    message = tmp_path / "caller-message.wav"
    _write_speech(message, lead_silence=prompt_s + 3.0, seconds=prompt_s + 8.0)
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav", play=message)
    assert phones.wait_until(lambda: call.confirmed, ANSWER_TIMEOUT_S)
    phones.pump(1.0)  # mid-greeting
    assert ctl.stop() == 0
    assert "caller hung up" not in ctl.log()
    assert phones.wait_until(lambda: call.ended, prompt_s + 25.0), "the voice message never ended"
    assert call.ended_by_remote
    assert_one_voice_message(asterisk)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def assert_one_voice_message(ast: DevAsterisk) -> None:
    files: list[Path] = []
    end = time.monotonic() + 10
    while time.monotonic() < end and not files:
        files = sorted(ast.messages.glob("message-*.wav"))
        time.sleep(0.2)
    assert len(files) == 1, f"voice message not written: {list(ast.messages.iterdir())}"
    assert files[0].stat().st_mode & 0o007 == 0, oct(files[0].stat().st_mode)  # a caller's voice: no other user
    with wave.open(str(files[0]), "rb") as w:
        assert w.getframerate() == 8000
        recorded = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert speech_seconds(recorded) >= 1.0, "the voice message is silent"


def test_five_calls_at_once_are_all_answered(asterisk, controller_factory, tmp_path: Path) -> None:
    controller_factory(asterisk).start()
    # One phone process per call (the pjsua2 wheel allows 4 calls per process).
    workers = [
        subprocess.Popen([sys.executable, "-m", "tests.phone_worker", "--server", f"127.0.0.1:{asterisk.ports.sip}",
                          "--user", "softphone", "--password", asterisk.softphone_password,
                          "--uri", asterisk.sip_uri, "--record", str(tmp_path / f"heard-{i}.wav"),
                          "--timeout", str(CALL_TIMEOUT_S)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, text=True)
        for i in range(5)
    ]
    outputs = [w.communicate(timeout=CALL_TIMEOUT_S + 30)[0] for w in workers]
    results = [json.loads(line.removeprefix("RESULT ")) for out in outputs
               for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 5, outputs
    for r in results:
        assert r["ended_by_remote"], f"a call was not answered and ended by the agent: {r}"
        assert r["speech_s"] >= 1.5, f"a caller heard no greeting: {r}"
    # They really overlapped: five channels were up at the same time is shown by the controller log
    # having started five calls before the first ended.
    assert wait_no_channels(asterisk) == []


def _write_speech(path: Path, lead_silence: float, seconds: float) -> None:
    """A caller speaking French (espeak-ng) after `lead_silence` s, in a file of `seconds` at 8 kHz."""
    from agent.tts.espeak_engine import synthesize_espeak
    from agent.tts.prompt_files import to_rate, write_wav

    samples, rate = synthesize_espeak("Bonjour, j'ai une fuite d'eau dans ma cuisine, rappelez-moi vite.")
    samples = to_rate(samples, rate)
    out = np.zeros(int(seconds * 8000), dtype=np.int16)
    start = int(lead_silence * 8000)
    n = min(len(out) - start, len(samples))
    out[start:start + n] = samples[:n]
    write_wav(path, out)


def test_without_french_models_the_agent_takes_a_voice_message(asterisk, controller_factory, phones, softphone,
                                                               tmp_path: Path) -> None:
    """No French speech model here: `standardiste run` says so in one line and takes a message."""
    from agent.devtools.phones import converse
    from agent.devtools.speech import speech_files

    ctl = controller_factory(asterisk).start()
    assert len([line for line in ctl.log().splitlines() if "No French speech model installed" in line]) == 1
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav")
    assert phones.wait_until(lambda: call.confirmed, ANSWER_TIMEOUT_S)
    said = ["Bonjour, j'ai une fuite d'eau dans ma cuisine, rappelez-moi vite."]
    converse(phones, call, speech_files(tmp_path, said))
    assert phones.wait_until(lambda: call.ended, 30.0)
    assert call.ended_by_remote
    assert_one_voice_message(asterisk)
    assert "voice message saved (1 utterance(s))" in ctl.log()
    # Greeting and goodbye were both heard: speech before the caller spoke and again after.
    heard = call.heard()
    assert call.media_active_at is not None
    spoke_from, spoke_to = (t - call.media_active_at for t in call.spoken[0])
    assert speech_seconds(heard[: int(spoke_from * 8000)]) >= 1.5
    assert speech_seconds(heard[int((spoke_to + 0.5) * 8000):]) >= 1.5
