"""Issue 13: the store's disk fills up, then fails (read-only), under a live controller with real
phones. The store is on a real ext4 file system of its own (a loop device, 8 MiB): the disk is
filled by a file, and turned read-only the way the kernel does on a disk error (ext4's
trigger_fs_error with errors=remount-ro)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.devtools.phones import converse
from agent.devtools.speech import speech_files
from tests.calls.test_doctor import doctor
from tests.live import CALLER_NUMBER, heard_speech_between, leftovers, scripted, store_rows, wait_lead

TURNS = ["Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.",
         "Rappelez-moi vite s'il vous plaît, c'est urgent pour moi."]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB ext4 file system mounted on a loop device (no reserved blocks: the test fills it all)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root (the CI runs as root)")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", str(image), str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Take every free block, down to the last byte (ext4 reserves delayed blocks at write time)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1 << 9, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
    return filler


def fail_read_only(disk: Path) -> None:
    """What ext4 does on an I/O error with errors=remount-ro: the mount turns read-only under the
    processes that have files open on it."""
    device = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(disk)], capture_output=True, text=True,
                            check=True).stdout.strip()
    Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("1\n")


def test_a_full_then_read_only_store_turns_calls_into_voice_messages_and_loses_nothing(
        asterisk, controller_factory, phones, softphone, small_disk: Path, tmp_path: Path) -> None:
    db = small_disk / "store.db"
    ctl = controller_factory(asterisk, scripted_asr=scripted(tmp_path, TURNS), store=db).start()
    config = ctl.config
    wavs = speech_files(tmp_path, TURNS)

    # 1. The disk fills up mid-call: what was said before is kept; the call becomes a voice message.
    call = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard-1.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: call.confirmed, 10)
    converse(phones, call, wavs[:1])
    wait_lead(db, lambda r: r["problem"] is not None, phones=phones)
    filler = fill(small_disk)
    converse(phones, call, wavs[1:])
    assert phones.wait_until(lambda: call.ended, 40), "the call did not end after the voice message"
    assert call.ended_by_remote
    assert "STORE NOT WRITABLE" in ctl.log() and "taking a voice message" in ctl.log()
    kept = sorted(asterisk.messages.glob("message-*.json"))
    assert len(kept) == 1 and kept[0].with_suffix(".wav").exists()
    assert json.loads(kept[0].read_text())["caller"] == CALLER_NUMBER
    assert oct(kept[0].stat().st_mode & 0o777) == "0o640"
    lead = store_rows(db, "SELECT * FROM leads")[0]
    assert lead["problem"] == "canalisation bouchée : Mon évier est bouché depuis ce matin"
    code, out = doctor(asterisk, config)
    assert code == 1 and "FAIL  1 voice message(s) taken while the store could not be written" in out, out
    assert "MiB free under" in out

    # 2. Space is freed: the next call is a conversation again, saved as it goes.
    filler.unlink()
    second = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard-2.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: second.confirmed, 10)
    converse(phones, second, wavs[:1])
    wait_lead(db, lambda r: r["call_id"] == 2 and r["problem"] is not None, phones=phones)
    second.hang_up()
    assert phones.wait_until(lambda: second.ended, 5)
    assert "writable again" in ctl.log()

    # 3. The disk fails (read-only under the running service): the caller still hears the greeting
    # and leaves a message; the store keeps what it had.
    fail_read_only(small_disk)
    third = phones.call(softphone, asterisk.sip_uri, tmp_path / "heard-3.wav", caller_number=CALLER_NUMBER)
    assert phones.wait_until(lambda: third.confirmed, 10)
    converse(phones, third, wavs[2:])
    assert phones.wait_until(lambda: third.ended, 40), "the call did not end after the voice message"
    heard = third.heard()
    assert heard_speech_between(heard, 0, len(heard) / 8000) >= 3.0, "the caller heard no greeting nor prompt"
    assert len(sorted(asterisk.messages.glob("message-*.json"))) == 2
    rows = store_rows(db, "SELECT call_id, problem FROM leads ORDER BY call_id")
    assert [r["call_id"] for r in rows] == [1, 2] and all(r["problem"] for r in rows)
    code, out = doctor(asterisk, config)
    assert code == 1 and f"FAIL  store {db} not writable" in out, out
    assert ctl.proc is not None and ctl.proc.poll() is None, "the controller died"
    assert leftovers(asterisk) == ([], [])
