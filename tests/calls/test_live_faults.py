"""Issues 8 and 13, defects an outside probe found: a controller killed mid-call, Asterisk killed
mid-call, the Stasis race under bursts of calls, a SIP port already taken, `make run` after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.devtools.asterisk import ARI_USER, DevAsterisk, sip_answers
from agent.devtools.phones import converse
from agent.devtools.speech import speech_files
from agent.telephony.call import CallOutcome
from tests.conftest import REPO
from tests.harness import InProcessAgent
from tests.live import CALLER_NUMBER, leftovers, scripted, store_rows, wait_lead

EXE = str(REPO / ".venv/bin/standardiste")


def _a_call_with_its_name_stored(asterisk: DevAsterisk, controller_factory: Any, phones: Any, softphone: Any,
                                 tmp_path: Path) -> tuple[Any, Any, Path]:
    """The controller, a call in progress, and the store once the caller's problem and name are in it."""
    turns = ["Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin."]
    ctl = controller_factory(asterisk, scripted_asr=scripted(tmp_path, turns)).start()
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    converse(phones, call, speech_files(tmp_path, turns))
    store = asterisk.run_dir / "standardiste.db"
    wait_lead(store, lambda r: r["name"] == "Jean Martin", timeout=10, phones=phones)
    return ctl, call, store


def test_kill_9_after_the_name_keeps_it_and_the_dialplan_takes_the_rest(asterisk, controller_factory, phones,
                                                                        softphone, tmp_path: Path) -> None:
    first, call, store = _a_call_with_its_name_stored(asterisk, controller_factory, phones, softphone, tmp_path)
    first.stop(signal.SIGKILL)
    killed = time.monotonic()
    second = controller_factory(asterisk).start()
    # The rest of the call: the dialplan's prompt, its beep, a voice message, then hang-up.
    converse(phones, call, speech_files(tmp_path, ["Rappelez-moi vite s'il vous plaît."]))
    assert phones.wait_until(lambda: call.ended, 40), "the caller was left in silence"
    assert call.ended_by_remote
    assert "1 caller(s) handed to the voice message" in second.log()
    assert "1 call(s) left open by the last run (stopped mid-call) closed" in second.log()
    heard = call.heard()
    assert call.media_active_at is not None
    after = heard[int((killed - call.media_active_at + 0.5) * 8000):]
    assert (abs(after.astype(int)) > 1000).sum() > 8000, "no fallback prompt heard after the restart"
    # The dialplan's recording (named by the caller's channel) is given to the call's lead.
    lead = wait_lead(store, lambda r: r["recording"] is not None, timeout=15, phones=phones)
    assert (lead["name"], lead["problem"]) == ("Jean Martin",
                                               "canalisation bouchée : Mon évier est bouché depuis ce matin")
    assert Path(lead["recording"]).stat().st_size > 8000
    # Said in the log once the store has it (CI58 read the log between the two).
    assert phones.wait_until(lambda: "voice message(s) the dialplan took" in second.log(), 5)
    assert store_rows(store, "SELECT outcome FROM calls")[0]["outcome"] == "interrupted: controller restarted"
    assert leftovers(asterisk) == ([], [])


@pytest.mark.solo
def test_asterisk_killed_mid_call_keeps_the_lead_and_the_next_call_is_answered(asterisk, controller_factory, phones,
                                                                              softphone, tmp_path: Path) -> None:
    """Asterisk dies (kill -9) after the caller gave the problem and their name, and comes back: what
    was heard is in the store, the call is closed, the controller reconnects within 5 s of ARI being
    back (backoff capped at 2 s), and the next call is answered."""
    ctl, _, store = _a_call_with_its_name_stored(asterisk, controller_factory, phones, softphone, tmp_path)
    assert asterisk.proc is not None
    os.killpg(asterisk.proc.pid, signal.SIGKILL)
    asterisk.proc.wait(10)
    phones.hang_up_all()  # the phone's side of a call whose server vanished
    asterisk.restart()
    back = time.monotonic()
    ctl.wait_ready(2, timeout=10)
    reconnect_s = time.monotonic() - back
    assert reconnect_s <= 5.0, f"reconnected {reconnect_s:.1f} s after ARI was back"
    lead = wait_lead(store, lambda r: r["name"] == "Jean Martin", phones=phones)
    assert lead["problem"] == "canalisation bouchée : Mon évier est bouché depuis ce matin"
    assert phones.wait_until(lambda: bool(store_rows(store, "SELECT 1 FROM calls WHERE ended_at IS NOT NULL")), 10), \
        "the call cut by the crash was never closed in the store"
    after = phones.call(softphone, asterisk.sip_uri, tmp_path / "after.wav")
    assert phones.wait_until(lambda: after.confirmed, 5), "the next call was not answered"
    assert ctl.proc is not None and ctl.proc.poll() is None


@pytest.mark.solo
def test_a_dropped_ari_websocket_reconnects_and_the_call_goes_on(asterisk, controller_factory, phones, softphone,
                                                                 tmp_path: Path) -> None:
    """The events websocket is cut (`ss -K`: the TCP connection killed, Asterisk stays up) while a
    caller is talking: the controller reconnects within 2 s and the call goes on to its next turns."""
    turns = ["Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.", "12 avenue Jean Médecin à Nice."]
    ctl = controller_factory(asterisk, scripted_asr=scripted(tmp_path, turns)).start()
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    wavs = speech_files(tmp_path, turns)
    converse(phones, call, wavs[:1])
    store = asterisk.run_dir / "standardiste.db"
    wait_lead(store, lambda r: r["problem"] is not None, timeout=10, phones=phones)
    cut = subprocess.run(["ss", "-K", "dst", "127.0.0.1", "dport", "=", str(asterisk.ports.http)],
                         capture_output=True, text=True)
    assert "ESTAB" in cut.stdout, cut.stdout + cut.stderr  # the websocket was there, and is cut
    dropped = time.monotonic()
    assert phones.wait_until(lambda: ctl.ready_count() >= 2, 5), ctl.log()[-2000:]
    reconnect_s = time.monotonic() - dropped
    assert reconnect_s <= 2.0, f"reconnected after {reconnect_s:.1f} s"
    converse(phones, call, wavs[1:])
    lead = wait_lead(store, lambda r: r["address"] is not None, timeout=15, phones=phones)
    assert lead["name"] == "Jean Martin" and not call.ended, "the call did not go on after the drop"
    assert "websocket" in ctl.log() and ctl.proc is not None and ctl.proc.poll() is None


BURSTS = 40
"""320 calls: a race that hit 1 call in 160 before the fix shows in 86 % of runs (it was 504 calls, 96 %,
for 40 s more of a suite that must stay under 20 minutes)."""
BURST = 8
HOLD_S = 1.0


def test_bursts_of_calls_never_fall_into_the_stasis_race(asterisk: DevAsterisk, tmp_path: Path) -> None:
    """Before the fix, about 1 call in 160 got 422 "Channel not in Stasis application" when its
    media channel was added to the bridge, and the caller fell to the voice message. The whole
    service answers (greeting streamed over RTP); each burst of 8 calls is held a second."""
    config = asterisk.controller_config(tmp_path / "standardiste.yaml", store=tmp_path / "store.db")
    agent = InProcessAgent(asterisk, config=config).start()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=f"{asterisk.ari_url}/ari", auth=(ARI_USER, asterisk.ari_password),
                                     timeout=10) as client:
            for _ in range(BURSTS):
                made = await asyncio.gather(*(client.post("/channels", params={
                    "endpoint": "Local/s@standardiste-answer", "app": "standardiste", "appArgs": "probe"})
                    for _ in range(BURST)))
                await asyncio.sleep(HOLD_S)
                await asyncio.gather(*(client.delete(f"/channels/{r.json()['id']}") for r in made))

    try:
        started = time.monotonic()
        asyncio.run(run())
        deadline = time.monotonic() + 30
        while agent.live_calls() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert agent.controller is not None
        stats = agent.call_soon(lambda: (agent.controller.calls_started,  # type: ignore[union-attr]
                                         dict(agent.controller.outcomes)))  # type: ignore[union-attr]
        retries = sum(c.media.join_retries for c in agent.finished_calls() if c.media is not None)
        print(f"\n{stats[0]} calls in bursts of {BURST} in {time.monotonic() - started:.0f} s: outcomes "
              f"{ {str(k): v for k, v in stats[1].items()} }; join retries in the last 50: {retries}")
        assert stats[0] == BURSTS * BURST
        assert CallOutcome.MEDIA_FAILED not in stats[1]
    finally:
        agent.stop()
    assert leftovers(asterisk) == ([], [])


def test_a_taken_sip_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert not sip_answers(port, timeout=0.3)  # something holds it, and it is not SIP
        out = subprocess.run([EXE, "dev", "--run-dir", str(tmp_path / "run"), "--sip-port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"SIP port 127.0.0.1:{port} (UDP) is already in use" in out.stderr
    assert "Traceback" not in out.stderr and "answering" not in out.stdout


def _wait_output(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, path.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not printed:\n{path.read_text(errors='replace')}")


def test_make_run_after_a_crash_stops_the_asterisk_it_left(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    log1 = tmp_path / "first.log"
    with open(log1, "wb") as out:
        first = subprocess.Popen([EXE, "dev", "--run-dir", str(run_dir), "--sip-port", "0"], stdout=out,
                                 stderr=subprocess.STDOUT, cwd=REPO)
    _wait_output(log1, "Standardiste is answering", first)
    old_pid = int((run_dir / "run" / "asterisk.pid").read_text())
    old_secret = (run_dir / "ari-password").read_text()
    first.send_signal(signal.SIGKILL)  # the crash: Asterisk (its own session) survives
    first.wait(10)
    assert Path(f"/proc/{old_pid}").exists()
    log2 = tmp_path / "second.log"
    with open(log2, "wb") as out:
        second = subprocess.Popen([EXE, "dev", "--run-dir", str(run_dir), "--sip-port", "0"], stdout=out,
                                  stderr=subprocess.STDOUT, cwd=REPO)
    try:
        _wait_output(log2, "Standardiste is answering", second)
        text = log2.read_text()
        assert f"Stopped the Asterisk a previous run left in {run_dir.resolve()} (pid {old_pid})" in text
        assert "Traceback" not in text
        assert not Path(f"/proc/{old_pid}").exists() or b"zombie" in Path(f"/proc/{old_pid}/status").read_bytes()
        assert (run_dir / "ari-password").read_text() != old_secret
        new_pid = int((run_dir / "run" / "asterisk.pid").read_text())
        assert new_pid != old_pid and Path(f"/proc/{new_pid}").exists()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    end = time.monotonic() + 10
    while Path(f"/proc/{new_pid}").exists() and time.monotonic() < end:
        time.sleep(0.2)
    assert not Path(f"/proc/{new_pid}").exists(), "Ctrl-C / SIGTERM left Asterisk running"


@pytest.fixture(autouse=True)
def _no_stray_asterisk(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield
    for pid_file in tmp_path.glob("**/run/asterisk.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
