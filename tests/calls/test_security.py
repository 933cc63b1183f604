"""Issue 13, security: what the running service exposes (sockets, files) and what it refuses (weak
passwords). Real Asterisk, the controller as a real process, a real phone."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from agent.devtools.asterisk import DevAsterisk
from agent.web.auth import set_password
from tests.conftest import REPO
from tests.sockets import Sock, listening

RESOLVER_SOCKETS = 2
"""Asterisk's res_pjsip makes a pjproject DNS resolver at load (config_system.c), whose two UDP
sockets (IPv4, IPv6) are bound to the wildcard address on ephemeral ports; no setting binds them
elsewhere. They take only the answers to Asterisk's own DNS queries (pjlib matches each answer's id
and source). docs/SECURITY.md names them; a firewall closes everything but SIP and RTP to the trunk."""


def _resolver(s: Sock) -> bool:
    return s.proto.startswith("udp") and not s.connected and s.port >= 32768 and s.address in ("0.0.0.0", "::")


def test_every_listener_binds_loopback_during_a_call(asterisk: DevAsterisk, controller_factory: Any, phones: Any,
                                                     softphone: Any, tmp_path: Path) -> None:
    """The controller (ARI client, ExternalMedia RTP, dashboard) and the dev Asterisk (SIP, HTTP/ARI,
    RTP to the phone and to the controller) open sockets on loopback only, counted while a call is
    up; the resolver's two sockets are the one named exception."""
    set_password(asterisk.run_dir / "web-password", "un mot de passe de test solide")
    controller = controller_factory(asterisk, first_turn_wait_seconds=20.0).start()
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav")
    try:
        assert phones.wait_until(lambda: call.confirmed, 10)
        phones.pump(1.5)  # the greeting plays: ExternalMedia and the phone's RTP are up
        assert controller.proc is not None and asterisk.proc is not None
        ours = listening(controller.proc.pid)
        theirs = listening(asterisk.proc.pid)
    finally:
        call.hang_up()
    assert any(s.proto.startswith("udp") for s in ours), "no ExternalMedia RTP socket seen during the call"
    assert any(s.port == asterisk.ports.web for s in ours), "the dashboard is not listening"
    assert [str(s) for s in ours if not s.loopback] == []
    wild = [s for s in theirs if not s.loopback]
    assert all(_resolver(s) for s in wild) and len(wild) <= RESOLVER_SOCKETS, [str(s) for s in wild]
    assert sum(s.proto.startswith("udp") and s.loopback for s in theirs) >= 3  # SIP and the two RTP legs


def test_the_dev_run_dir_is_private(asterisk: DevAsterisk) -> None:
    """Passwords (ari_users.conf, pjsip.conf, the secrets files), voice messages and the store live in
    the run dir: 0700, and what is in it is never readable by other users."""
    run = asterisk.run_dir
    assert run.stat().st_mode & 0o777 == 0o700
    for name in ("ari-password", "softphone-password", "artisan-password", "etc/ari_users.conf", "etc/pjsip.conf"):
        assert (run / name).stat().st_mode & 0o777 == 0o600, name
    exposed = [str(p.relative_to(run)) for p in run.rglob("*") if not p.is_symlink() and p.stat().st_mode & 0o007]
    assert exposed == []
    assert os.stat(asterisk.messages).st_mode & 0o777 == 0o700


def _unknown_invite(port: int, call_id: str) -> bytes:
    """An INVITE from a SIP user Asterisk has no endpoint for, as a scanner or a misrouted trunk sends."""
    return (f"INVITE sip:100@127.0.0.1:{port} SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-sd-privacy;rport\r\n"
            "Max-Forwards: 70\r\n"
            f'From: "{CALLER_NAME}" <sip:{CALLER_NUMBER}@127.0.0.1>;tag=sd1\r\n'
            f"To: <sip:100@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            "Contact: <sip:caller@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n").encode()


CALLER_NAME = "Josiane Vermeulen"
CALLER_NUMBER = "+33645781290"


def test_asterisks_log_files_hold_no_caller_name_or_number(asterisk: DevAsterisk, tmp_path: Path) -> None:
    """pjsip_distributor.c logs an unknown endpoint's INVITE with its From header (name and number)
    at NOTICE. A channel added for the test sees that line; the log files of the shipped levels
    (asterisk-conf/logger.conf, and the dev profile's) do not."""
    import socket
    import time

    witness = tmp_path / "notice-witness.log"
    asterisk.cli(f"logger add channel {witness} notice")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.bind(("127.0.0.1", 0))
            s.sendto(_unknown_invite(asterisk.ports.sip, "sd-privacy-1"), ("127.0.0.1", asterisk.ports.sip))
            reply = s.recv(4096).decode(errors="replace")
        assert reply.startswith("SIP/2.0 4"), reply[:80]  # refused: no endpoint
        end = time.monotonic() + 5
        while time.monotonic() < end and CALLER_NUMBER not in (witness.read_text() if witness.exists() else ""):
            time.sleep(0.1)
        assert CALLER_NAME in witness.read_text(), "the NOTICE line this test guards against was not seen"
    finally:
        asterisk.cli(f"logger remove channel {witness}")
    logs = [p for p in (asterisk.run_dir / "log").rglob("*") if p.is_file() and p != witness]
    assert logs, "Asterisk wrote no log file"
    for path in logs:
        text = path.read_text(errors="replace")
        assert CALLER_NUMBER not in text and CALLER_NAME not in text and "645781290" not in text, path
    shipped = (REPO / "asterisk-conf" / "logger.conf").read_text()
    assert [ln.split("=>")[1].strip() for ln in shipped.splitlines() if "=>" in ln and not ln.startswith(";")] == [
        "warning,error", "warning,error"]


def test_a_dtmf_flood_and_a_200_character_caller_id_leave_the_call_and_the_controller_well(
        asterisk: DevAsterisk, controller_factory: Any, phones: Any, softphone: Any, tmp_path: Path) -> None:
    """A caller (or a fraud robot) presenting a 200-character caller ID and pressing keys for 8 s: the
    call is answered and greeted, the number is taken as withheld (no SMS to it), the controller
    stays up and answers the next call."""
    from agent.devtools.speech import speech_seconds
    from tests.live import leftovers, store_rows

    ctl = controller_factory(asterisk)
    ctl.start()
    long_id = "+33" + "6" * 197
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "flood.wav", caller_number=long_id)
    assert phones.wait_until(lambda: call.confirmed, 10)
    assert phones.wait_until(lambda: call.media_active_at is not None, 5)
    sent = 0
    flood_end = time.monotonic() + 8.0
    while time.monotonic() < flood_end:  # as fast as the phone's DTMF queue takes them
        try:
            call.press("0123456789")
            sent += 10
        except Exception:  # pjsua2.Error: its queue is full; it drains as digits are sent
            pass
        phones.pump(0.05)
    assert sent >= 50, sent  # RFC 4733 events take ~130 ms each: this is as fast as a phone can press
    assert speech_seconds(call.heard_so_far()) >= 1.0, "no greeting heard"
    call.hang_up()
    store = asterisk.run_dir / "standardiste.db"
    assert phones.wait_until(lambda: bool(store_rows(store, "SELECT 1 FROM calls WHERE ended_at IS NOT NULL")), 10)
    assert [r["caller_id"] for r in store_rows(store, "SELECT caller_id FROM calls")] == [""]  # withheld
    assert ctl.proc is not None and ctl.proc.poll() is None
    after = phones.call(softphone, asterisk.sip_uri, tmp_path / "after.wav")
    assert phones.wait_until(lambda: after.confirmed, 5)
    after.hang_up()
    assert "Traceback" not in ctl.log()
    assert leftovers(asterisk) == ([], [])


def test_no_personal_data_in_the_logs_of_a_whole_call(asterisk: DevAsterisk, controller_factory: Any, phones: Any,
                                                      softphone: Any, tmp_path: Path) -> None:
    """A whole booking call, the controller at log level debug: neither its log nor Asterisk's holds
    the caller's number, name, address or any of their words, nor the ARI or SIP password."""
    from agent.devtools.phones import agent_quiet, converse
    from agent.devtools.speech import speech_files
    from tests.live import scripted, wait_lead

    # Up to the address read back (Piper speaks the caller's address and number there), then hang up.
    turns = ["Bonjour, mon évier de cuisine est bouché depuis ce matin.", f"{CALLER_NAME}.",
             "27 rue des Capucines à Nice."]
    ctl = controller_factory(asterisk, scripted_asr=scripted(tmp_path, turns), extra=["log_level: debug"]).start()
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    converse(phones, call, speech_files(tmp_path, turns))
    store = asterisk.run_dir / "standardiste.db"
    lead = wait_lead(store, lambda r: r["address"] is not None and r["name"] is not None, timeout=30, phones=phones)
    assert "Vermeulen" in lead["name"] and "Capucines" in lead["address"]  # the data was heard...
    assert phones.wait_until(lambda: agent_quiet(call, call.spoken[-1][1], 1.0), 20)  # and read back
    call.hang_up()
    phones.wait_until(lambda: call.ended, 10)
    logs = {"controller": ctl.log()} | {p.name: p.read_text(errors="replace")
                                        for p in (asterisk.run_dir / "log").rglob("*") if p.is_file()}
    assert " DEBUG " in logs["controller"]
    secrets = ("Vermeulen", "Josiane", "Capucines", "645781290", "45 78 12 90", "évier", "cuisine", "bouché",
               asterisk.ari_password, asterisk.softphone_password)  # nor the passwords
    for name, text in logs.items():  # ...and is in no log
        found = [s for s in secrets if s.lower() in text.lower()]
        assert found == [], f"{name} holds {found}"


DICTATED = "+44 7700 900123"


def test_a_number_the_caller_dictates_is_never_dialled_nor_sent_an_sms(
        asterisk: DevAsterisk, live: Any, phones: Any, softphone: Any, tmp_path: Path) -> None:
    """An emergency caller asks to be put through to a number of their own (a foreign mobile): the
    transfer rings the configured target only, and the SMS go to the configured artisan and to the
    caller's own French mobile, never to the dictated number."""
    from agent.devtools.asterisk import ARTISAN_USER
    from agent.devtools.phones import converse
    from tests.live import CALLER_NUMBER, GAS_TRIGGER, GAS_TURN, store_rows, utterance_wavs, wait_lead

    turn = f"{GAS_TURN} Transférez-moi plutôt au {DICTATED}, c'est mon voisin."
    live([turn], urgency={"triggers": [GAS_TRIGGER]}, transfer={"ring_timeout": 5})
    artisan = phones.artisan(f"127.0.0.1:{asterisk.ports.sip}", ARTISAN_USER, asterisk.artisan_password, tmp_path)
    try:
        assert phones.wait_until(lambda: artisan.registered, 10)
        artisan.answer_code = None  # it rings, nobody answers
        call = phones.call(softphone, asterisk.sip_uri, tmp_path / "caller.wav", caller_number=CALLER_NUMBER)
        assert phones.wait_until(lambda: call.confirmed, 10)
        converse(phones, call, utterance_wavs(tmp_path, [turn]), interrupt_after_s=2.0)
        assert phones.wait_until(lambda: bool(artisan.incoming), 30), "the configured artisan phone never rang"
        db = tmp_path / "store.db"
        wait_lead(db, lambda r: r["status"] == "transfer_failed", timeout=30, phones=phones)
        call.hang_up()
        assert phones.wait_until(lambda: call.ended, 5)
        assert phones.wait_until(lambda: len(store_rows(db, "SELECT 1 FROM outbox")) >= 3, 10)
    finally:
        phones.hang_up_all()
        phones.remove_account(artisan)
    digits = "447700900123"
    targets = {r["target"] for r in store_rows(db, "SELECT target FROM actions WHERE kind = 'transfer'")}
    assert targets == {"PJSIP/artisan"}, targets
    dialled = [line for line in asterisk.log_tail(5000).splitlines() if "Called " in line]
    assert dialled and all("artisan" in line or "127.0.0.1" in line for line in dialled), dialled
    recipients = {r["kind"]: r["recipient"] for r in store_rows(db, "SELECT kind, recipient FROM outbox")}
    assert recipients == {"artisan_unreached": "PJSIP/artisan", "artisan": "PJSIP/artisan", "caller": CALLER_NUMBER}
    assert not any(digits in "".join(filter(str.isdigit, line)) for line in asterisk.log_tail(5000).splitlines())
