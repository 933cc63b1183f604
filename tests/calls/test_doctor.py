"""Issue 11: `standardiste doctor` on a real Asterisk: it passes on the test box, and fails with the
right line for a stopped Asterisk, a wrong ARI password, a missing module, a missing model and a
store that cannot be written."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent.devtools.asterisk import DevAsterisk
from agent.telephony.rtp import max_callers
from tests.conftest import REPO


def doctor(ast: DevAsterisk, config: Path) -> tuple[int, str]:
    cli = f"{ast.install.bin} -C {ast.etc / 'asterisk.conf'} -rx"
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "doctor", "--config", str(config),
                          "--asterisk-cli", cli], capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


def test_doctor_passes_on_the_test_box_and_names_what_to_fix(asterisk: DevAsterisk, tmp_path: Path) -> None:
    config = asterisk.controller_config(tmp_path / "ok.yaml", store=tmp_path / "store.db")
    code, out = doctor(asterisk, config)
    print(out)
    assert code == 0, out
    for line in ("OK    Asterisk reachable, ARI user accepted", "modules the service needs are running",
                 "OK    the dialplan contexts are present", "OK    store", "GiB free",
                 f"OK    Asterisk's call limit {max_callers(asterisk.ports.rtp_start, asterisk.ports.rtp_end)} fits"):
        assert line in out, line
    assert "FAIL" not in out

    # A missing model: an install that stopped half-way left an empty folder, and a model copied by
    # hand carries no checksum of the manifest's pinned files.
    models = tmp_path / "models"
    (models / "vosk-model-fr-0.22").mkdir(parents=True)
    (models / "vosk-fr-small").mkdir()
    (models / "vosk-fr-small" / "README").write_text("copied by hand\n")
    code, out = doctor(asterisk, asterisk.controller_config(tmp_path / "m.yaml", store=tmp_path / "store.db",
                                                            models=models))
    assert code == 1 and "FAIL  model(s) incomplete or not matching the manifest's checksums" in out
    assert "vosk-model-fr-0.22, vosk-fr-small (make models)" in out

    # A store that cannot be written (a read-only file system; the tests run as root, so no chmod).
    code, out = doctor(asterisk, asterisk.controller_config(tmp_path / "s.yaml", store=Path("/proc/sd-doctor.db")))
    assert code == 1 and "FAIL  store /proc/sd-doctor.db not writable" in out

    # A wrong ARI password.
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    text = config.read_text().replace(str(asterisk.run_dir / "ari-password"), str(wrong))
    (tmp_path / "w.yaml").write_text(text)
    code, out = doctor(asterisk, tmp_path / "w.yaml")
    assert code == 1 and "FAIL  ARI password refused (HTTP 401)" in out

    # A missing module (the SMS route through Asterisk needs res_pjsip_messaging).
    asterisk.cli("module unload res_pjsip_messaging.so")
    code, out = doctor(asterisk, config)
    assert code == 1 and "FAIL  modules not loaded: res_pjsip_messaging" in out

    # A stopped Asterisk.
    asterisk.stop()
    code, out = doctor(asterisk, config)
    assert code == 1 and "FAIL  Asterisk unreachable at" in out and "systemctl start asterisk" in out
