"""Shared fixtures: a private Asterisk per test, the controller as a real process, SIP phones.

tests/unit/ needs no Asterisk and no phone (real SQLite, CalDAV, SMTP, HTTP servers and browsers
still); tests/calls/ makes real calls; tests/data/ holds scenarios, personas and SIPp scripts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.devtools.asterisk import SOFTPHONE_USER, DevAsterisk

REPO = Path(__file__).resolve().parents[1]
CONTROLLER_READY_S = 30.0


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


REAL_CALL_FIXTURES = {"asterisk", "controller_factory", "phones", "softphone", "live", "artisan"}


SOLO_MODULES = ("test_engine_faults", "test_call_audio", "test_supervise", "test_engines")
"""Whose tests hold time limits (an engine's 2 s, RTP jitter, a watchdog's seconds, the LLM's budget):
`make test` runs them alone, after the others have run two at a time (pytest-xdist)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/calls/ put a real Asterisk or phones to work: marked `asterisk`. One that asks for
    a real-call fixture elsewhere is a test in the wrong folder, refused here."""
    for item in items:
        in_calls = item.module.__name__.startswith("tests.calls.")
        if REAL_CALL_FIXTURES & set(getattr(item, "fixturenames", ())) and not in_calls:
            raise pytest.UsageError(f"{item.nodeid} needs a real Asterisk or phones: it belongs in tests/calls/")
        if in_calls:
            item.add_marker(pytest.mark.asterisk)
        if item.module.__name__.endswith(SOLO_MODULES):
            item.add_marker(pytest.mark.solo)
    # Real calls first (the soak's first of all): run four at a time, the long ones are spread over
    # the workers and the thousand short ones fill the gaps at the end, rather than one long call last.
    items.sort(key=lambda it: (it.get_closest_marker("asterisk") is None, not it.module.__name__.endswith("test_soak")))


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
               for w in ("setup", "call"))


@pytest.fixture
def asterisk(request: pytest.FixtureRequest) -> Iterator[DevAsterisk]:
    """A private Asterisk from the dev profile on free loopback ports; its log is printed on failure."""
    ast = DevAsterisk()
    try:
        ast.start()
        yield ast
    finally:
        if _failed(request):
            sys.stderr.write("\n==== Asterisk log ====\n" + ast.log_tail(120) + "\n")
        ast.cleanup()


class ControllerProcess:
    """`standardiste run --config FILE` as a real process, with its log captured."""

    def __init__(self, config: Path, log_path: Path, extra: list[str] | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> ControllerProcess:
        before = self.ready_count()
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(REPO / ".venv/bin/standardiste"), "run", "--config", str(self.config),
                                      *self.extra], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        out.close()
        if wait_ready:
            self.wait_ready(before + 1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ready_count(self) -> int:
        return len(re.findall(r"ARI events connected", self.log()))

    def wait_ready(self, count: int, timeout: float = CONTROLLER_READY_S) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.ready_count() >= count:
                time.sleep(0.3)  # the re-sync after connecting
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"controller exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"controller not connected after {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code


SHARED_ENGINE_TIMEOUT_MS = 5000
"""The engines' time limit (`call.engine_timeout_ms`, the product's 2000) of the controllers started
by tests that `make test` runs three at a time (pytest-xdist): there a voice or a recogniser late by
seconds is the test box's load (three test streams with their phones and Asterisks on two cores:
CI57's stand-in voice took over 2 s for a sentence and a booking call became a voice message), not a
hung engine. The product's limit is tested alone, where it is the subject (test_engine_faults.py,
solo); what the caller waits is measured by `make bench`."""


def shared_limits() -> dict[str, object]:
    return {"engine_timeout_ms": SHARED_ENGINE_TIMEOUT_MS} if os.environ.get("PYTEST_XDIST_WORKER") else {}


@pytest.fixture
def controller_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    made: list[ControllerProcess] = []

    def make(ast: DevAsterisk, scripted_asr: Path | None = None, **call: object) -> ControllerProcess:
        call.setdefault("first_turn_wait_seconds", 2.0)  # silent test phones: do not wait 8 s
        call = {**shared_limits(), **call}
        config = ast.controller_config(tmp_path / f"standardiste-{len(made)}.yaml", **call)
        if os.environ.get("STANDARDISTE_TEST_DEBUG"):  # the call traces in the controller logs
            config.write_text(config.read_text() + "log_level: debug\n")
        extra = ["--scripted-asr", str(scripted_asr)] if scripted_asr else []
        proc = ControllerProcess(config, tmp_path / f"controller-{len(made)}.log", extra)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        if proc.proc is not None:
            proc.stop(signal.SIGKILL)
        if _failed(request):
            sys.stderr.write(f"\n==== controller log {proc.log_path.name} ====\n{proc.log()}\n")


@pytest.fixture(scope="session")
def phones() -> Iterator:  # type: ignore[type-arg]
    from agent.devtools.phones import Phones

    p = Phones(log_level=int(os.environ.get("PJSUA_LOG_LEVEL", "1")))
    yield p
    p.close()


@pytest.fixture
def softphone(phones, asterisk: DevAsterisk):  # type: ignore[no-untyped-def]
    """A pjsua2 account on the dev profile's softphone endpoint; calls are hung up after the test."""
    acc = phones.account(f"127.0.0.1:{asterisk.ports.sip}", SOFTPHONE_USER, asterisk.softphone_password)
    yield acc
    phones.hang_up_all()
    phones.remove_account(acc)


@pytest.fixture
def live(asterisk: DevAsterisk, tmp_path: Path) -> Iterator[Any]:
    """Start the whole service in-process on `asterisk` with a dialplan and scripted recogniser."""
    from tests.harness import InProcessAgent
    from tests.live import dialplan_file, scripted

    made: list[InProcessAgent] = []

    def start(turns: tuple[str, ...] | list[str] | None, *, knobs: dict[str, Any] | None = None,
              extra: list[str] | None = None, call: dict[str, Any] | None = None, **dialplan: Any) -> InProcessAgent:
        plan = dialplan_file(tmp_path, **dialplan)
        config = asterisk.controller_config(tmp_path / "standardiste.yaml", dialplan=str(plan),
                                            store=tmp_path / "store.db", extra=extra,
                                            **{**shared_limits(), **(call or {})})
        asr = scripted(tmp_path, turns, **(knobs or {})) if turns is not None else None
        agent = InProcessAgent(asterisk, config=config, scripted_asr=asr).start()
        made.append(agent)
        return agent

    yield start
    for agent in made:
        agent.stop()


@pytest.fixture
def provider() -> Iterator[str]:
    """A real HTTP SMS provider on loopback (tests/provider.py) that fails its first two requests."""
    from tests.provider import serve_provider

    with serve_provider(fail=2) as url:
        yield url


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """A real CalDAV server (Radicale) on loopback with the artisan's calendar; stopped after the test."""
    from agent.devtools.radicale import Radicale

    server = Radicale(tmp_path / "radicale").start()
    try:
        server.calendar()
        yield server
    finally:
        server.stop()
