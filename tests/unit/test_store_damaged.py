"""Issue 24 item 5: a damaged store says so, once, and the service keeps answering. A store whose
header is overwritten, one truncated to half, and one of 0 bytes: building the service does not
fail (no restart loop), one clear line says what, where and how to restore from the daily backup,
every call is then taken as a voice message (the store refuses writes: `failing`), the dashboard
answers 503 with a French explanation instead of a traceback, and `standardiste doctor` fails on
the store's integrity."""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path

import pytest

from agent.app import build
from agent.config import load_config
from agent.doctor import _store as doctor_store_check
from agent.store.db import Store
from agent.web.app import WebSettings, create_app
from agent.web.auth import hash_password
from tests.unit.test_start import _config

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402


def _filled(path: Path, calls: int = 300) -> None:
    store = Store(path)

    async def fill() -> None:
        for i in range(calls):
            call_id = await store.open_call(channel_id=f"{i}.1", did="", caller_id="+33612345678", dialplan="p.yaml",
                                            trade="plombier", business="Plomberie Martin")
            store.add_turn(call_id, "caller", "Mon évier est bouché " * 20)
            store.set_lead(call_id, name=f"Client {i}", problem="évier bouché " * 10)
        await store.run(lambda c: None)
    asyncio.run(fill())
    store.close()


def _damage(path: Path, how: str) -> None:
    if how == "header":
        with path.open("r+b") as f:
            f.write(b"\x00garbage, not a database\x00" * 4)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["header", "truncated", "empty"])
def test_a_damaged_store_is_said_once_and_calls_become_voice_messages(tmp_path: Path, how: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(_config(tmp_path))
    path = config.paths.store
    _filled(path)
    _damage(path, how)
    scripted = tmp_path / "asr.json"
    scripted.write_text('{"utterances": []}')
    caplog.set_level(logging.INFO)
    service = build(config, scripted_asr=scripted)  # no exception: no restart loop
    store = service.deps.store
    try:
        async def a_call() -> None:
            await store.open_call(channel_id="x.1", did="", caller_id="+33611111111", dialplan="p.yaml",
                                  trade="plombier", business="Plomberie Martin")

        if how == "empty":  # nothing to restore from inside it: a new store, said loudly
            assert "STORE EMPTY" in caplog.text and str(path) in caplog.text
            asyncio.run(a_call())
            return
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 (the session turns any failure to open the call into a voice message)
                asyncio.run(a_call())
        assert store.failing in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        lines = [r for r in caplog.records if "STORE" in r.getMessage()]
        assert len(lines) == 1 and "STORE DAMAGED" in lines[0].getMessage(), [r.getMessage() for r in lines]
        said = lines[0].getMessage()
        assert str(path) in said and "backups" in said and "voice messages" in said
        check = doctor_store_check(path)
        assert check.verdict.name == "FAIL" and "damaged" in check.line, check
        app = create_app(WebSettings(store=path, password_hash=hash_password("un mot de passe solide"),
                                     secret="k" * 32), writer=store)
        client = TestClient(app)
        page = client.get("/connexion")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/connexion", data={"password": "un mot de passe solide", "csrf": token})
        for url in ("/", "/appels", "/demandes"):
            r = client.get(url)
            assert r.status_code == 503 and "Le registre des appels est endommagé" in r.text, (url, r.text[:200])
            assert "Traceback" not in r.text
    finally:
        store.close()
