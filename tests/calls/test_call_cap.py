"""The call cap (issue 24): Asterisk's channel limit sized from its RTP range, the controller's
`call.max_concurrent`, and a burst of INVITEs (SIPp) that once crashed Asterisk."""

from __future__ import annotations

import configparser
import csv
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from agent.config import CALLS_PER_CORE, load_config
from agent.devtools.asterisk import ARI_USER, DevAsterisk
from agent.devtools.phones import converse
from agent.devtools.speech import CLOCK_RATE_HZ, speech_files
from agent.telephony.rtp import max_callers
from agent.yamlnode import ConfigError
from tests.conftest import REPO
from tests.live import CALLER_NUMBER, heard_speech_between, leftovers, scripted, store_rows

BURST_CALLS = 300
BURST_RATE = 60
OVER_CAPACITY = "over capacity: voice message"


def _conf(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), comment_prefixes=(";",), strict=False)
    parser.read(REPO / "asterisk-conf" / name)
    return parser


def test_asterisks_channel_limit_keeps_within_its_rtp_range() -> None:
    rtp = _conf("rtp.conf")
    ports = rtp.getint("general", "rtpstart"), rtp.getint("general", "rtpend")
    assert _conf("asterisk.conf").getint("options", "maxcalls") == max_callers(*ports) == 1666
    dev = (REPO / "asterisk-conf" / "dev" / "asterisk.conf").read_text()
    assert "maxcalls = @@maxcalls@@" in dev


def test_doctor_fails_an_asterisk_without_a_call_limit_or_with_one_too_high(tmp_path: Path) -> None:
    """The check's reading of the CLI's answers (the passing case runs on a real Asterisk in
    test_doctor.py); here a stand-in CLI prints what Asterisk 22 prints without `maxcalls`."""
    from agent.doctor import Verdict, _call_limit

    def cli(limit: str) -> list[str]:
        script = tmp_path / f"cli-{limit.replace(' ', '')}"
        script.write_text("#!/bin/sh\ncase \"$1\" in\n"
                          f"'core show settings') echo '  Maximum calls:               {limit}' ;;\n"
                          "'rtp show settings') printf '  Port start:      10000\\n  Port end:        20000\\n' ;;\n"
                          "esac\n")
        script.chmod(0o755)
        return [str(script)]

    unset, high, fits = (_call_limit(cli(x)) for x in ("Not set", "5000 (Current 3)", "1666 (Current 0)"))
    assert unset.verdict is Verdict.FAIL and "set maxcalls = 1666 in asterisk.conf" in unset.line
    assert high.verdict is Verdict.FAIL and "5000 exceeds" in high.line
    assert fits.verdict is Verdict.OK


def test_max_concurrent_is_read_and_checked(tmp_path: Path) -> None:
    base = (f"ari:\n  url: http://127.0.0.1:8088\n  password_file: {tmp_path / 'pw'}\n"
            "dialplans:\n  default: plombier\n")
    (tmp_path / "pw").write_text("Kq3vN8zXw2LmT7pR9sYb4HcJ6fGd1AeU\n")
    (tmp_path / "pw").chmod(0o600)
    default = tmp_path / "default.yaml"
    default.write_text(base)
    import os
    assert load_config(default).max_calls == CALLS_PER_CORE * (os.cpu_count() or 1)
    two = tmp_path / "two.yaml"
    two.write_text(base + "call:\n  max_concurrent: 2\n")
    assert load_config(two).max_calls == 2
    zero = tmp_path / "zero.yaml"
    zero.write_text(base + "call:\n  max_concurrent: 0\n")
    with pytest.raises(ConfigError, match=r"call\.max_concurrent"):
        load_config(zero)


def test_a_caller_beyond_the_cap_leaves_a_voice_message_kept_with_the_calls(asterisk: DevAsterisk, controller_factory,
                                                                             phones, softphone, tmp_path: Path) -> None:
    """With `call.max_concurrent: 1`, a second caller while the first talks is not answered by the
    receptionist but by the dialplan (prompt, beep, message): the call and its lead (the caller's
    number, status message) are in the store, the voice message attached to it."""
    ctl = controller_factory(asterisk, scripted_asr=scripted(tmp_path, ["Bonjour."]), max_concurrent=1).start()
    first = phones.call(softphone, asterisk.sip_uri, tmp_path / "first.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: first.confirmed, 10)
    second = phones.call(softphone, asterisk.sip_uri, tmp_path / "second.wav", caller_number="+33698765432")
    assert phones.wait_until(lambda: second.confirmed, 10)
    # The dialplan's prompt and beep, then the message (said once they are over), then hang-up.
    # (quiet 1.5 s: the prompt's own pauses come near 1 s; CI44's caller spoke into one and hung up
    # before the beep)
    converse(phones, second, speech_files(tmp_path, ["Rappelez-moi s'il vous plaît, c'est pour une fuite."]),
             quiet_s=1.5)
    assert heard_speech_between(second.heard_so_far(), 0, 30) > 2.0, "the caller over capacity heard no prompt"
    phones.wait_until(lambda: False, 1.0)
    second.hang_up()
    store = asterisk.run_dir / "standardiste.db"
    over = "SELECT * FROM leads JOIN calls ON calls.id = leads.call_id WHERE leads.caller_id = '+33698765432'"
    assert phones.wait_until(lambda: any(r["recording"] for r in store_rows(store, over)), 20), \
        [dict(r) for r in store_rows(store, over)]
    lead = store_rows(store, over)[0]
    assert (lead["status"], lead["outcome"]) == ("message", OVER_CAPACITY)
    assert Path(lead["recording"]).stat().st_size > CLOCK_RATE_HZ  # more than half a second of speech
    talking = store_rows(store, "SELECT outcome FROM calls WHERE caller_id = ?", CALLER_NUMBER)
    assert [r["outcome"] for r in talking] == [None]  # still going on
    assert "conversations going on (call.max_concurrent): handed to the voice message" in ctl.log()
    assert not first.ended, "the first conversation was disturbed"


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.solo
@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (sip-tester) is installed by make test")
def test_a_burst_of_300_invites_at_60_a_second_is_answered_or_refused_cleanly(asterisk: DevAsterisk,
                                                                              controller_factory,
                                                                              tmp_path: Path) -> None:
    """300 INVITEs at 60/s, each held 4 s once answered: the receptionist converses with
    `max_concurrent` callers, the dialplan takes the next ones' voice messages, and past Asterisk's
    caller limit (its 400 RTP ports / 6) the rest are refused with a SIP error. Asterisk stays up,
    no port allocation fails, nothing is left behind, the next call is answered."""
    ctl = controller_factory(asterisk, max_concurrent=4).start()
    ctl.wait_ready(1, timeout=20)
    run = subprocess.run(
        ["sipp", f"127.0.0.1:{asterisk.ports.sip}", "-sf", str(REPO / "tests" / "data" / "sipp" / "burst.xml"),
         "-s", "100", "-au", "softphone", "-ap", asterisk.softphone_password, "-i", "127.0.0.1",
         "-p", str(_free_udp()), "-mi", "127.0.0.1", "-mp", str(_free_udp()),
         "-m", str(BURST_CALLS), "-r", str(BURST_RATE), "-l", str(BURST_CALLS), "-recv_timeout", "30000",
         "-timeout", "120s", "-timeout_error", "-trace_counts", "-trace_err", "-nostdin"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180)
    shutil.copy(asterisk.log_file, tmp_path / "asterisk.log")  # whole, for a failure's post-mortem
    counts = _sipp_counts(tmp_path)
    errors = "".join(p.read_text()[-3000:] for p in tmp_path.glob("*_errors.log"))
    assert run.returncode == 0, f"SIPp: exit {run.returncode}, {counts}\n{errors}\n{run.stderr[-2000:]}"
    answered, refused = counts.get("200", 0), sum(n for code, n in counts.items() if code[:1] in "45")
    assert answered + refused == BURST_CALLS and answered >= 100, counts
    assert asterisk.proc is not None and asterisk.proc.poll() is None, "Asterisk died"
    log = asterisk.log_file.read_text(errors="replace")
    assert "couldn't allocate a port for RTP" not in log.lower() and "maximum" in log.lower(), log[-2000:]
    info = httpx.get(f"{asterisk.ari_url}/ari/asterisk/info", auth=(ARI_USER, asterisk.ari_password), timeout=5)
    assert info.status_code == 200
    store = asterisk.run_dir / "standardiste.db"
    over = store_rows(store, "SELECT count(*) AS n FROM calls WHERE outcome = ?", OVER_CAPACITY)[0]["n"]
    talked = store_rows(store, "SELECT count(*) AS n FROM calls WHERE outcome != ?", OVER_CAPACITY)[0]["n"]
    assert over + talked == answered and over > 0 and talked >= 4, (over, talked, answered)
    assert leftovers(asterisk, timeout=30) == ([], [])
    print(f"\nburst {BURST_CALLS} at {BURST_RATE}/s: {talked} conversations, {over} voice messages (over "
          f"capacity), {refused} refused by Asterisk ({counts})")


def _sipp_counts(folder: Path) -> dict[str, int]:
    """Final responses to the authenticated INVITE, by code, from SIPp's -trace_counts CSV."""
    files = list(folder.glob("*_counts.csv"))
    if not files:
        return {}
    rows = list(csv.reader(files[0].open(), delimiter=";"))
    header, last = rows[0], rows[-1]
    out: dict[str, int] = {}
    for i, name in enumerate(header):
        # Columns like "8_503_Recv": message index, code, direction. The authenticated INVITE is
        # message 4; its final answers are the responses after it up to the first 200 (the next 200
        # is the BYE's).
        parts = name.split("_")
        if len(parts) == 3 and parts[2] == "Recv" and parts[1].isdigit() and int(parts[0]) > 4 \
                and parts[1] not in ("100", "180", "183") and i < len(last) and last[i].isdigit() \
                and "200" not in out:
            out[parts[1]] = int(last[i])
    return out
