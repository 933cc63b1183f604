"""Issue 11: `scripts/install-box.sh` into a throwaway root; the units pass `systemd-analyze verify`;
an upgrade keeps the config; the daily backup is a consistent copy made with SQLite's backup API."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from agent.store.db import Store
from agent.store.queries import backup
from tests.conftest import REPO

UNITS = ("standardiste.service", "standardiste-backup.service", "standardiste-backup.timer")


def install(root: Path) -> str:
    out = subprocess.run(["bash", str(REPO / "scripts/install-box.sh"), "--root", str(root), "--no-venv"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_install_script_lays_out_the_box_and_keeps_the_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = install(root)
    assert "config example copied" in out
    assert (root / "opt/standardiste/src/agent/app.py").is_file()
    assert (root / "opt/standardiste/src/pyproject.toml").is_file()
    config = root / "etc/standardiste/standardiste.yaml"
    assert config.stat().st_mode & 0o777 == 0o640 and (root / "etc/standardiste").stat().st_mode & 0o777 == 0o750
    for d in ("prompts", "messages", "models", "backups"):
        assert (root / "var/lib/standardiste" / d).stat().st_mode & 0o777 == 0o750
    for unit in UNITS:
        assert (root / "etc/systemd/system" / unit).is_file()
    assert (root / "etc/logrotate.d/standardiste").is_file()
    unit = (root / "etc/systemd/system/standardiste.service").read_text()
    for line in ("Restart=always", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "ExecStart=/opt/standardiste/.venv/bin/standardiste run --config /etc/standardiste/standardiste.yaml"):
        assert line in unit
    # An upgrade: new code, the integrator's config untouched.
    config.write_text("# edited by the integrator\n")
    (root / "opt/standardiste/src/agent/leftover.py").write_text("")
    assert "config example copied" not in install(root)
    assert config.read_text() == "# edited by the integrator\n"
    assert not (root / "opt/standardiste/src/agent/leftover.py").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root)
    # The installed tree with a venv (the project's own), and the units pointing into the root.
    (root / "opt/standardiste/.venv").symlink_to(REPO / ".venv")
    checked = tmp_path / "units"
    checked.mkdir()
    for unit in UNITS:
        text = (root / "etc/systemd/system" / unit).read_text()
        (checked / unit).write_text(text.replace("/opt/standardiste", str(root / "opt/standardiste"))
                                    .replace("/etc/standardiste", str(root / "etc/standardiste")))
    out = subprocess.run(["systemd-analyze", "verify", *[str(checked / u) for u in UNITS]], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_backup_is_a_consistent_dated_copy_and_old_ones_go(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")

    async def call() -> int:
        return await store.open_call(channel_id="1.1", did="", caller_id="+33612345678", dialplan="p",
                                     trade="plombier", business="B")
    asyncio.run(call())
    day = 86400.0
    copies = [backup(store.path, tmp_path / "backups", keep=3, now=1_800_000_000 + i * day) for i in range(5)]
    store.close()
    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert kept == [c.name for c in copies[-3:]]
    assert copies[-1].stat().st_mode & 0o777 == 0o600
    conn = sqlite3.connect(copies[-1])
    assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
