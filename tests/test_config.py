"""Service config: every bad value is an error naming the file, the key path and what was expected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.config import load_config
from agent.session.timing import RecogniserSetup
from agent.yamlnode import ConfigError
from tests.conftest import REPO

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
    path.write_text("s3cret\n")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "standardiste.yaml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path: Path, secret: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD.format(secret=secret)))
    assert cfg.ari.password == "s3cret"
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


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "asterisk-conf/standardiste.example.yaml").read_text()
    monkeypatch.setenv("STANDARDISTE_ARI_PASSWORD", "x")
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
        ("ari:\n  password: hunter2\n", "ari.password", "no password in the YAML"),
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
         "sms.route", "one of none, sip, http, spool"),
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
