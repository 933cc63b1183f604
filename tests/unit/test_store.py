"""The store on its own: migrations, durability settings, ordered writes, retention, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from agent.store.db import Store, StoreError, connect, migrate
from agent.store.queries import DAY_S, Retention, apply_retention, call_detail, leads
from agent.store.schema import SCHEMA_VERSION, LeadStatus, Who
from tests.conftest import REPO


def test_a_new_store_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.close()
    conn = connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"calls", "turns", "leads", "actions", "traces", "bookings"} <= tables
    assert migrate(conn) == SCHEMA_VERSION  # a second run finds it current and does nothing
    conn.close()


def test_a_store_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this Standardiste"):
        Store(tmp_path / "s.db")


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.store import db, schema

    broken = dict(schema.MIGRATIONS)
    broken[SCHEMA_VERSION + 1] = ("CREATE TABLE extra (x)", "THIS IS NOT SQL")
    monkeypatch.setattr(db, "MIGRATIONS", broken)
    monkeypatch.setattr(db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        Store(tmp_path / "s.db")
    conn = connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'extra'").fetchone()


def test_each_write_is_on_disk_in_order_before_the_next(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")

    async def scenario() -> int:
        call_id = await store.open_call(channel_id="1.1", did="0493000001", caller_id="+33612345678",
                                        dialplan="p.yaml", trade="plombier", business="Plomberie Martin")
        store.add_turn(call_id, Who.AGENT, "Bonjour")
        store.add_turn(call_id, Who.CALLER, "J'ai une fuite")
        store.set_lead(call_id, name="Marie Dubois")
        store.set_lead(call_id, name="Marie Dupont", urgency="critical")
        store.mark_last_agent_turn_interrupted(call_id)
        store.add_action(call_id, "transfer", "PJSIP/artisan", "failed", "busy")
        await asyncio.wrap_future(store.set_lead(call_id, status=LeadStatus.TRANSFER_FAILED, reason="busy"))
        return call_id

    call_id = asyncio.run(scenario())
    # Read from another connection while the writer is still running: committed, in order.
    detail = store.read(lambda c: call_detail(c, call_id))
    assert detail is not None
    lead = detail["lead"]
    assert (lead["name"], lead["urgency"], lead["status"], lead["reason"]) == (
        "Marie Dupont", "critical", "transfer_failed", "busy")
    assert [(t["who"], t["text"], t["interrupted"]) for t in detail["turns"]] == [
        ("agent", "Bonjour", True), ("caller", "J'ai une fuite", False)]
    assert detail["actions"][0]["result"] == "failed"
    with pytest.raises(StoreError, match="no lead column"):
        store.set_lead(call_id, password="x")
    store.close()


def _seed(store: Store, dialplan: str, age_days: float, recording: Path | None) -> int:
    async def go() -> int:
        call_id = await store.open_call(channel_id="x", did="", caller_id="", dialplan=dialplan, trade="plombier",
                                        business="B")
        await asyncio.wrap_future(store.end_call(call_id, "completed", []))
        if recording is not None:
            await asyncio.wrap_future(store.set_lead(call_id, recording=str(recording)))
        return call_id

    call_id = asyncio.run(go())
    then = time.time() - age_days * DAY_S
    store.run_sync(lambda c: c.execute("UPDATE calls SET started_at = ?, ended_at = ? WHERE id = ?",
                                       (then, then, call_id)))
    return call_id


def test_retention_removes_old_recordings_and_calls_per_dialplan(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    messages = tmp_path / "messages"
    messages.mkdir()
    recs = {name: messages / f"{name}.wav" for name in ("old", "recent", "other")}
    for path in recs.values():
        path.write_bytes(b"RIFF")
    old_rec = _seed(store, "a.yaml", 100, recs["old"])  # recording past 90 days, lead kept
    recent = _seed(store, "a.yaml", 10, recs["recent"])
    ancient = _seed(store, "a.yaml", 400, None)  # past the 365-day lead limit
    other = _seed(store, "b.yaml", 100, recs["other"])  # b keeps recordings 180 days
    stray = messages / "message-1-2.wav"  # recorded by the dialplan itself (agent down)
    stray.write_bytes(b"RIFF")
    os.utime(stray, (time.time() - 200 * DAY_S,) * 2)
    card, fresh_card = messages / "message-1-3.json", messages / "message-2-4.json"  # the store was unwritable
    for path, age in ((card, 200), (fresh_card, 10)):
        path.write_text("{}")
        os.utime(path, (time.time() - age * DAY_S,) * 2)
    rules = [Retention("a.yaml", 90, 365), Retention("b.yaml", 180, 1095)]
    removed = store.run_sync(lambda c: apply_retention(c, rules, messages))
    assert removed == (2, 1)  # old's recording + the stray file; the ancient call
    assert not recs["old"].exists() and recs["recent"].exists() and recs["other"].exists()
    assert not stray.exists() and not card.exists() and fresh_card.exists()
    ids = {row["call_id"]: row for row in store.read(lambda c: leads(c))}
    assert set(ids) == {old_rec, recent, other}
    assert ancient not in ids
    assert ids[old_rec]["recording"] is None and ids[recent]["recording"] == str(recs["recent"])
    store.close()


def test_leads_command_lists_leads_as_json_and_csv(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")

    async def go() -> None:
        call_id = await store.open_call(channel_id="1.2", did="", caller_id="+33612345678", dialplan="p",
                                        trade="plombier", business="Plomberie Martin")
        await asyncio.wrap_future(store.set_lead(call_id, name="Marie Dubois", urgency="critical",
                                                 action="transfer", status=LeadStatus.TRANSFERRED))
    asyncio.run(go())
    store.close()
    exe = str(REPO / ".venv/bin/standardiste")
    out = subprocess.run([exe, "leads", "--store", str(tmp_path / "s.db"), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["name"], r["urgency"], r["action"], r["status"]) for r in rows] == [
        ("Marie Dubois", "critical", "transfer", "transferred")]
    out = subprocess.run([exe, "leads", "--store", str(tmp_path / "s.db"), "--csv"], capture_output=True, text=True)
    assert out.stdout.splitlines()[0].startswith("call_id,created_at,name")
    assert "Marie Dubois" in out.stdout
    out = subprocess.run([exe, "leads", "--store", str(tmp_path / "nope.db")], capture_output=True, text=True)
    assert out.returncode == 1 and "no store" in out.stderr
    out = subprocess.run([exe, "call", "1", "--store", str(tmp_path / "s.db")], capture_output=True, text=True)
    assert out.returncode == 0 and "lead: name=Marie Dubois" in out.stdout


def test_forget_erases_a_persons_data_and_records_the_erasure_without_the_number(tmp_path: Path) -> None:
    """GDPR art. 17: `standardiste forget NUMBER` erases the calls from that number and the leads that
    give it as the callback number, with turns, voice messages and SMS; other callers' data stays."""
    store = Store(tmp_path / "s.db")
    voice = tmp_path / "voice.wav"
    voice.write_bytes(b"RIFF")

    async def seed() -> dict[str, int]:
        ids = {}
        for key, caller, phone in (("called", "+33612345678", None), ("again", "+33612345678", None),
                                   ("gave", "+33499887766", "+33612345678"), ("other", "+33700000001", None)):
            ids[key] = await store.open_call(channel_id=key, did="", caller_id=caller, dialplan="p",
                                             trade="plombier", business="Plomberie Martin")
            await asyncio.wrap_future(store.set_lead(ids[key], name=f"Personne {key}", phone=phone,
                                                     recording=str(voice) if key == "called" else None))
            await asyncio.wrap_future(store.add_turn(ids[key], "caller", f"je m'appelle Personne {key}"))
        return ids

    ids = asyncio.run(seed())
    store.run_sync(lambda c: c.execute(
        "INSERT INTO outbox (key, call_id, kind, route, recipient, body, state, next_at, created_at) "
        "VALUES ('k1', ?, 'caller', 'sip', '+33612345678', 'RDV', 'sent', 0, 0), "
        "('k2', ?, 'artisan', 'sip', '+33600000000', 'Personne other', 'pending', 0, 0)",
        (ids["called"], ids["other"])))
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "forget", "06 12 34 56 78", "--store",
                          str(tmp_path / "s.db")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "3 call(s), 3 lead(s), 1 voice message(s), 1 SMS" in out.stdout and "12 34" not in out.stdout
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    dump = "\n".join(conn.iterdump())
    assert "612345678" not in dump and "Personne called" not in dump and "Personne gave" not in dump
    assert "Personne other" in dump and not voice.exists()
    assert conn.execute("SELECT calls, leads, recordings, messages FROM erasures").fetchall() == [(3, 3, 1, 1)]
    bad = subprocess.run([str(REPO / ".venv/bin/standardiste"), "forget", "not a number", "--store",
                          str(tmp_path / "s.db")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a phone number" in bad.stderr and "Traceback" not in bad.stderr


HOLDER = """
import sys, time
from pathlib import Path
from agent.store.db import Store
Store(Path(sys.argv[1]), sole=True)
print("held", flush=True)
time.sleep(600)
"""


def test_one_controller_per_store(tmp_path: Path) -> None:
    """A second controller on a store would close the first one's live calls as interrupted: it
    stops at once with one line naming the other's pid; a killed holder frees the store."""
    from tests.unit.test_config import ARI_SECRET

    db = tmp_path / "store.db"
    first = Store(db, sole=True)
    with pytest.raises(StoreError, match=f"another controller \\(pid {os.getpid()}\\) runs on the store {db}"):
        Store(db, sole=True)
    reader = Store(db)  # the commands (leads, forget) and the dashboard are not controllers
    reader.close()
    first.close()
    Store(db, sole=True).close()  # released with the store

    holder = subprocess.Popen([str(REPO / ".venv/bin/python"), "-c", HOLDER, str(db)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        secret = tmp_path / "ari-password"
        secret.write_text(ARI_SECRET + "\n")
        secret.chmod(0o600)
        config = tmp_path / "standardiste.yaml"
        config.write_text(f"ari:\n  url: http://127.0.0.1:9\n  password_file: {secret}\n"
                          f"paths:\n  store: {db}\n  prompts: {tmp_path / 'prompts'}\n"
                          f"dialplans:\n  default: plombier\n")
        out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "run", "--config", str(config)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1, out.stderr
        assert f"another controller (pid {holder.pid}) runs on the store" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        holder.kill()
        holder.wait()
    Store(db, sole=True).close()  # a kill -9 leaves no lock behind


def test_one_rule_says_a_transfer_is_still_pending() -> None:
    """actions/sms.py (no SMS yet) and session/recovery.py (a call cut then was not taken) ask the
    store's rule; its action word is the dialogue's."""
    from agent.dialogue.state import Action
    from agent.store.schema import TRANSFER_ACTION, LeadStatus, transfer_pending

    assert TRANSFER_ACTION == Action.TRANSFER.value
    assert transfer_pending("transfer", "new") and transfer_pending(Action.TRANSFER, LeadStatus.NEW)
    assert not transfer_pending("transfer", LeadStatus.TRANSFER_FAILED) and not transfer_pending("booking", "new")
