"""Service config: every bad value is an error naming the file, the key path and what was expected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.config import load_config
from agent.session.timing import CallTiming, RecogniserSetup
from agent.yamlnode import ConfigError
from tests.conftest import REPO

ARI_SECRET = "s3cret-Horse-Battery-42"
GOOD = """\
ari:
  url: http://127.0.0.1:8088
  password_file: {secret}
paths:
  prompts: /tmp/prompts
dialplans:
  default: plombier
"""


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "ari-password"
    path.write_text(f"{ARI_SECRET}\n")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "standardiste.yaml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD.format(secret=secret)))
    assert cfg.ari.password == ARI_SECRET
    assert cfg.ari.url == "http://127.0.0.1:8088"
    assert cfg.ari.app == "standardiste"
    assert cfg.dialplans.default.business == "Plomberie Martin"
    assert "assistant automatique" in cfg.dialplans.default.greeting  # AI disclosure by default


def test_recognition_settings_default_and_override(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD.format(secret=secret)))
    assert (cfg.asr.threads, cfg.asr.nice, cfg.call.recogniser_setup) == (0, 10, RecogniserSetup.BACKGROUND)
    cfg = load_config(write(tmp_path, GOOD.format(secret=secret) + "asr:\n  threads: 3\n  nice: 0\n"
                            "call:\n  recogniser_setup: blocking\n"))
    assert (cfg.asr.threads, cfg.asr.nice, cfg.call.recogniser_setup) == (3, 0, RecogniserSetup.BLOCKING)


def test_the_dead_air_budget_counts_the_silence_since_the_last_word(tmp_path: Path, secret: Path) -> None:
    assert CallTiming().ack_by(ended_at=10.0, decided_at=10.7) == pytest.approx(11.0)  # off by default
    t = CallTiming(ack_after_s=0.3, dead_air_s=0.8)
    # a turn ended early, 200 ms into the pause: the acknowledgement 300 ms after the decision
    assert t.ack_by(ended_at=10.0, decided_at=10.2) == pytest.approx(10.5)
    # a turn that waited out the 700 ms hangover: 800 ms after the last word, 100 ms after the decision
    assert t.ack_by(ended_at=10.0, decided_at=10.7) == pytest.approx(10.8)
    # decided later still (a slow decision): never before the decision itself
    assert t.ack_by(ended_at=10.0, decided_at=11.0) == pytest.approx(11.0)
    # a large budget changes nothing: 300 ms after the decision, whatever came before
    assert CallTiming(ack_after_s=0.3, dead_air_s=5.0).ack_by(10.0, 10.7) == pytest.approx(11.0)
    cfg = load_config(write(tmp_path, GOOD.format(secret=secret)))
    assert (cfg.call.ack_after_s, cfg.call.dead_air_s) == (0.3, 0.0)
    cfg = load_config(write(tmp_path, GOOD.format(secret=secret) + "call:\n  dead_air_ms: 800\n"))
    assert cfg.call.dead_air_s == 0.8


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "asterisk-conf/standardiste.example.yaml").read_text()
    monkeypatch.setenv("STANDARDISTE_ARI_PASSWORD", ARI_SECRET)
    import yaml

    from agent.config import parse_config

    data = yaml.safe_load(text)
    del data["ari"]["password_file"]
    cfg = parse_config(data, str(REPO / "asterisk-conf/standardiste.example.yaml"))
    assert cfg.dialplans.for_did("0493000001").business == "Plomberie Martin"
    assert cfg.dialplans.for_did("+33 4 93 00 00 02").trade.trade == "serrurier"
    assert cfg.dialplans.for_did("0100000000") is cfg.dialplans.default


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("ari: [1, 2]\n", "ari", "a mapping"),
        ("ari:\n  url: localhost:8088\n  password_file: {secret}\n", "ari.url", "http:// or https:// URL"),
        ("ari:\n  password: hunter2\n", "ari.password", "no ARI password in the YAML"),
        ("ari:\n  password_file: /nonexistent/secret\n", "ari.password_file", "readable file"),
        ("ari:\n  password_file: {secret}\n  usernme: x\n", "ari.usernme", "no such key"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncall:\n  first_turn_wait_seconds: 0\n",
         "call.first_turn_wait_seconds", "a number from 1.0 to 60.0"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: zingueur}}\n", "dialplans.default",
         "a dialplan YAML file, or a built-in trade"),
        ("ari:\n  password_file: {secret}\n", "dialplans", "a section"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier, numbers: {{'+': serrurier}}}}\n",
         "dialplans.numbers.+", "a dialled number"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncall:\n  ack_after_ms: 5\n",
         "call.ack_after_ms", "an integer from 100 to 3000"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncall:\n  dead_air_ms: -1\n",
         "call.dead_air_ms", "an integer from 0 to 5000"),
        ("ari:\n  password_file: {secret}\nmedia:\n  format: opus\n", "media.format", "one of ulaw"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nasr:\n  nice: 25\n", "asr.nice",
         "an integer from 0 to 19"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncall:\n  recogniser_setup: lazy\n",
         "call.recogniser_setup", "one of background"),
        ("ari:\n  password_file: {secret}\nmedia:\n  vad:\n    aggressiveness: 5\n", "media.vad.aggressiveness",
         "an integer from 0 to 3"),
        ("ari:\n  password_file: {secret}\nmedia:\n  vad:\n    start_frames: 6\n", "media.vad.start_frames",
         "at most start_window"),
        ("ari:\n  password_file: {secret}\nmedia:\n  barge_in:\n    enabled: 'yes'\n", "media.barge_in.enabled",
         "true or false"),
        ("ari:\n  password_file: {secret}\nmedia:\n  lead_frames: 4\n", "media.lead_frames", "an integer from 0 to 3"),
        ("ari:\n  password_file: {secret}\nlog_level: loud\n", "log_level", "one of debug, info"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nextra: 1\n", "extra", "no such key"),
        ("ari: {{url: http://x\n", "", "valid YAML"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms: {{route: carrier-pigeon}}\n",
         "sms.route", "one of none, sip, http, spool, email"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms:\n  route: http\n  http:\n"
         "    url: https://user:pw@sms.example/send\n", "sms.http.url", "a URL without credentials"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms:\n  route: http\n  http:\n"
         "    url: https://sms.example/send\n    secret: abc\n", "sms.http.secret", "no API secret in the YAML"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms:\n  route: http\n  http:\n"
         "    url: https://sms.example/send\n    secret_env: NO_SUCH_VARIABLE_HERE\n", "sms.http.secret_env",
         "the environment variable NO_SUCH_VARIABLE_HERE"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms:\n  route: spool\n  spool:\n"
         "    directory: /nonexistent/outbox\n", "sms.spool.directory", "an existing spool directory"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms:\n  route: sip\n  sip:\n"
         "    to: \"sip:{{number}}@gw\"\n", "sms.sip.to", "a PJSIP message destination"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\nsms:\n  retry: {{max_attempts: 0}}\n",
         "sms.retry.max_attempts", "an integer from 1 to 100"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncalendar: {{kind: google}}\n",
         "calendar.kind", "one of local, caldav"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncalendar:\n  kind: caldav\n  caldav:\n"
         "    url: https://dav.example/\n    username: a\n    calendar: T\n    password: x\n",
         "calendar.caldav.password", "no CalDAV password in the YAML"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncalendar:\n  kind: caldav\n  caldav:\n"
         "    url: https://dav.example/\n    username: a\n    calendar: T\n", "calendar.caldav.password_file",
         "a file holding the CalDAV password"),
        ("ari:\n  password_file: {secret}\ndialplans: {{default: plombier}}\ncalendar:\n  kind: caldav\n  caldav:\n"
         "    url: https://a:b@dav.example/\n    username: a\n    calendar: T\n    password_file: {secret}\n",
         "calendar.caldav.url", "without credentials"),
        ("paths: {{}}\n", "ari", "a section"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path: Path, secret: Path, text: str, path: str,
                                                   expected: str) -> None:
    file = write(tmp_path, text.format(secret=secret))
    with pytest.raises(ConfigError) as err:
        load_config(file)
    assert err.value.file == str(file)
    assert err.value.path == path
    assert expected in str(err.value)
    assert str(file) in str(err.value)


def test_missing_password_everywhere_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STANDARDISTE_ARI_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="STANDARDISTE_ARI_PASSWORD"):
        load_config(write(tmp_path, "ari:\n  url: http://127.0.0.1:8088\n"))


def test_check_config_command_reports_without_traceback(tmp_path: Path, secret: Path) -> None:
    bad = write(tmp_path, f"ari:\n  url: ftp://x\n  password_file: {secret}\n")
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "check-config", str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "ari.url" in out.stderr and "Traceback" not in out.stderr
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.format(secret=secret))
    out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "check-config", str(good)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "OK" in out.stdout


LAUGHS = ("  app: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
          + "".join(f"  l{i}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)))
"""The "billion laughs": nine levels of nine aliases, about 387 million strings once expanded."""


def _hostile(tmp_path: Path, secret: Path, kind: str) -> tuple[Path, str]:
    """A service config (or a dialplan it names) that once crashed or stalled check-config, and the
    error it must give instead."""
    head = f"ari:\n  password_file: {secret}\n"
    path = tmp_path / "standardiste.yaml"
    if kind == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
        return path, "a YAML file as text (this one holds binary data)"
    if kind == "latin-1":
        path.write_bytes((head + "  app: caf\xe9\ndialplans: {default: plombier}\n").encode("latin-1"))
        return path, "a YAML file in UTF-8 (byte 0xe9 on line 3 is not UTF-8"
    if kind == "deep-flow":
        path.write_text(head + "dialplans: " + "[" * 50000 + "]" * 50000 + "\n")
        return path, "valid YAML (nesting deeper than 32 levels"
    if kind == "deep-block":
        path.write_text(head + "dialplans:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(300))
                        + "  " * 301 + "x: 1\n")
        return path, "valid YAML (nesting deeper than 32 levels"
    if kind == "billion-laughs":
        path.write_text("ari:\n" + LAUGHS + f"  password_file: {secret}\ndialplans: {{default: plombier}}\n")
        return path, "valid YAML (aliases (*name) are not accepted"
    if kind == "dev-zero-password":
        path.write_text("ari:\n  password_file: /dev/zero\ndialplans: {default: plombier}\n")
        return path, "ari.password_file: expected a regular file"
    if kind == "big-password-file":
        big = tmp_path / "big"
        big.write_bytes(b"x" * 100_000)
        path.write_text(f"ari:\n  password_file: {big}\ndialplans: {{default: plombier}}\n")
        return path, "ari.password_file: expected a file holding the ARI password of at most 4096 bytes"
    import yaml

    dialplan = tmp_path / "plan.yaml"
    data = yaml.safe_load((REPO / "agent/dialogue/dialplans/plombier.yaml").read_text())
    data["greeting"] = "Bonjour, je suis l'assistant automatique. " + "a" * (10 << 20 if kind == "10mb-greeting"
                                                                              else 1000)
    dialplan.write_text(yaml.safe_dump(data, allow_unicode=True))
    path.write_text(head + f"dialplans: {{default: {dialplan}}}\n")
    if kind == "10mb-greeting":
        return path, "expected a YAML file of at most 1048576 bytes"
    return path, "greeting: expected at most 400 characters, got '1042 characters'"


HOSTILE = ("binary", "latin-1", "deep-flow", "deep-block", "billion-laughs", "dev-zero-password", "big-password-file",
           "10mb-greeting", "long-greeting")


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_files_get_a_clear_error_fast(tmp_path: Path, secret: Path, kind: str) -> None:
    import time

    path, expected = _hostile(tmp_path, secret, kind)
    started = time.process_time()  # this process's CPU: a file that blows the parser up, whatever else runs
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert len(str(err.value)) < 400 and time.process_time() - started < 2.0


def test_check_config_never_shows_a_traceback_on_hostile_files(tmp_path: Path, secret: Path) -> None:
    for kind in HOSTILE:
        path, expected = _hostile(tmp_path, secret, kind)
        out = subprocess.run([str(REPO / ".venv/bin/standardiste"), "check-config", str(path)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2 and expected in out.stderr and "Traceback" not in out.stderr, (kind, out.stderr)


def test_an_error_value_is_cut_before_it_is_formatted() -> None:
    from agent.yamlnode import Node

    huge: dict[str, object] = {"a": ["x" * 10_000] * 10_000}
    for _ in range(30):
        huge = {"k": huge, "l": [huge] * 100}
    with pytest.raises(ConfigError) as err:
        Node("f.yaml", "ari", {"app": huge}).text("app")
    assert len(str(err.value)) < 200 and "f.yaml: ari.app: expected a non-empty string, got {" in str(err.value)


def test_a_secrets_file_readable_by_others_is_used_with_a_warning(tmp_path: Path, secret: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    secret.chmod(0o644)
    with caplog.at_level("WARNING"):
        assert load_config(write(tmp_path, GOOD.format(secret=secret))).ari.password == ARI_SECRET
    assert any("readable by other users (mode 644): chmod 600" in r.getMessage() for r in caplog.records)
    caplog.clear()
    secret.chmod(0o600)
    load_config(write(tmp_path, GOOD.format(secret=secret)))
    assert not [r for r in caplog.records if "chmod" in r.getMessage()]


@pytest.mark.parametrize("weak", ["asterisk", "Standardiste2024!", "0123456789abcdef", "xxxxxxxxxxxxxxxxxxxx",
                                  "r4nd0m-short", "1234567890123456"])
def test_a_weak_ari_password_is_refused_without_showing_it(tmp_path: Path, weak: str) -> None:
    path = tmp_path / "weak"
    path.write_text(weak + "\n")
    with pytest.raises(ConfigError, match=r"ari\.password_file: expected a strong ARI password") as err:
        load_config(write(tmp_path, GOOD.format(secret=path)))
    assert weak not in str(err.value)
