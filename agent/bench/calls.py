"""One bench phase: the receptionist (`standardiste run`, as in production) on the bench's Asterisk,
phone processes placing calls, tcpdump on the loopback, and the figures of every call.

Times at the phones come from the capture (when each datagram crossed the loopback); the phones'
own records (when each turn was played, monotonic) and the receptionist's trace (marks relative to
its call's start) are brought onto the capture's clock: the first by readings of both clocks taken
by this process, the second by the call's answer (its "answered" mark is the 200 OK on the wire).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agent.bench.pcap import read_pcap
from agent.bench.stats import (
    clock_offset,
    late_frames,
    stage_breakdown,
    turns,
)
from agent.bench.wire import WireCall, sip_calls
from agent.devtools.speech import voiced_ms
from agent.store.db import connect
from agent.store.rows import traces

CALLS_PER_PHONE_PROCESS: Final = 3
"""The pjsua2 wheel is built for 4 calls a process; 3 leaves room for a stray one."""
READY_TIMEOUT_S: Final = 60.0
WARMED: Final = ("recognisers warmed for the first calls", "warming the recognisers failed")
"""The receptionist's log lines that end its recognisers' warm-up (agent/asr/vosk_engine.py, agent/engines.py)."""
REPO: Final = Path(__file__).resolve().parents[2]


@dataclass
class Phase:
    name: str
    calls: int
    scripts: tuple[tuple[str, ...], ...]
    """Conversations: call i says scripts[i % len(scripts)], turn by turn (the scripted recogniser
    is given the same texts, call by call in the order the calls start)."""
    pipeline: str = "streaming"
    stagger_s: float = 0.7
    """Between two calls' starts: conversations in progress are not in step."""
    burst: int = 0
    """After `burst_after_s`, this many more calls at the same instant, only to time their answer."""
    burst_after_s: float = 12.0
    profile_s: float = 0.0
    """If set, py-spy samples the receptionist this long during the phase."""
    call: dict[str, object] = field(default_factory=dict)
    """More of the service config's `call:` settings (a before/after comparison in the same run)."""
    asr: dict[str, object] = field(default_factory=dict)
    """The service config's `asr:` settings, likewise."""
    vad: dict[str, object] = field(default_factory=dict)
    """The service config's `media.vad:` settings, likewise (the end of a turn)."""
    against: str = ""
    """The product's phase this one is compared with (same calls, the former behaviour)."""
    change: str = ""
    """What the compared phase reverts, for the report ("recogniser made on the event loop")."""


CUT_MARGIN_S: Final = 0.1
"""An end of utterance this close to the end of the phone's turn is its end, not a cut (the trace is
put on the capture's clock by the answer: a few ms)."""
HEARD_WITHIN_S: Final = 1.5
"""A turn's end of utterance comes at most the hangover (0.7 s) and the frames' way after its end."""


@dataclass
class CallFigures:
    number: str
    burst: bool
    answered: bool
    invite_to_ok_ms: float | None = None
    answer_ms: float | None = None
    """INVITE -> first audible greeting packet at the phone."""
    turn_ms: list[float] = field(default_factory=list)
    unanswered_turns: int = 0
    late_frames: int = 0
    max_gap_ms: float = 0.0
    stages_ms: list[dict[str, float]] = field(default_factory=list)
    acks: int = 0
    """Acknowledgements ("D'accord.") played because a reply was not ready within the budget."""
    turns_planned: int = 0
    utterances: int = 0
    """Utterances the receptionist heard (their ends)."""
    cut_offs: int = 0
    """Ends of utterances decided while the phone was still saying its turn (it had more to say after
    a pause): a caller cut mid-sentence, whether or not the rest was then joined to the turn."""
    turns_unheard: int = 0
    """Turns the phone said with no end of utterance from their start to HEARD_WITHIN_S after their
    end: the receptionist never took them (a short answer the VAD missed, or taken for echo)."""
    ends_decided: int = 0
    """Utterances ended in a pause by the decision (words or sound) rather than the hangover."""
    message_end_ms: list[float] = field(default_factory=list)
    """Turns that were part of a voice message (message mode), kept out of `turn_ms`: after each,
    the receptionist waits `next_turn_wait_seconds` for more of the message by design."""


@dataclass
class PhaseResult:
    phase: Phase
    calls: list[CallFigures]
    cpu_percent: float
    rss_peak_mb: float
    engines: list[str]
    wall_s: float
    profile: Path | None = None


class Receptionist:
    """`standardiste run` for one phase, with its CPU time and peak RSS sampled."""

    def __init__(self, config: Path, scripted: Path, log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen([str(REPO / ".venv/bin/standardiste"), "run", "--config", str(config),
                                          "--scripted-asr", str(scripted)], stdout=out, stderr=subprocess.STDOUT,
                                         cwd=REPO)
        self.rss_peak_kb = 0
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, warmed: bool = False) -> None:
        """Until the receptionist takes calls; `warmed`: and its recognisers are warmed (10-12 s of one
        core after each start, which fell on the first calls of every phase: 32 % of the samples
        under 8 calls, 2026-12-07 08:31), so that a phase measures a box that has been up."""
        end = time.monotonic() + READY_TIMEOUT_S
        waited = WARMED if warmed else ()
        while "ARI events connected" not in (log := self.log()) or (waited and not any(w in log for w in waited)):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"the receptionist did not start:\n{log[-3000:]}")
            time.sleep(0.1)
        time.sleep(0.5)

    def engines(self) -> list[str]:
        lines = {line.split(" ", 3)[-1].strip() for line in self.log().splitlines()
                 if any(k in line for k in (" ASR: ", " TTS: ", " LLM: "))}
        return sorted(re.sub(r" from \S+ \(tests and demos only\)", " (tests and demos only)", ln) for ln in lines)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.rss_peak_kb = max(self.rss_peak_kb, int(line.split()[1]))

    def start_measuring(self) -> None:
        self._cpu0, self._wall0 = self.cpu_seconds(), time.monotonic()

    def cpu_percent(self) -> float:
        return 100 * (self.cpu_seconds() - self._cpu0) / max(1e-6, time.monotonic() - self._wall0)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Capture:
    """tcpdump on the loopback, UDP only, written as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-n", "-s", "4096", "-w", str(path), "udp"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line.strip()} {self.proc.stderr.read().decode()[:500]}")

    def stop(self) -> None:
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)


def clock_readings(n: int = 5) -> list[tuple[float, float]]:
    """(monotonic, unix) readings of the same instants."""
    out = []
    for _ in range(n):
        a = time.monotonic()
        b = time.time()
        c = time.monotonic()
        out.append(((a + c) / 2, b))
    return out


def run_phase(ast: Any, phase: Phase, wavs: dict[str, Path], work: Path, first_number: int) -> PhaseResult:
    """Run one phase end to end and return its figures."""
    folder = work / phase.name
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "store.db"
    asr = ["asr:", *(f"  {k}: {v}" for k, v in phase.asr.items())] if phase.asr else []
    asr += ["media:", "  vad:", *(f"    {k}: {v}" for k, v in phase.vad.items())] if phase.vad else []
    config = ast.controller_config(folder / "standardiste.yaml", store=store, extra=asr, pipeline=phase.pipeline,
                                   **phase.call)
    scripted = folder / "caller-words.json"
    words = [list(phase.scripts[i % len(phase.scripts)]) for i in range(phase.calls)] + [[]] * phase.burst
    said = [t for script in phase.scripts for t in script]
    scripted.write_text(json.dumps({"calls": words, "timed_with_vosk": True, "voiced_ms": voiced_ms(said)},
                                   ensure_ascii=False))
    started = time.monotonic()
    receptionist = Receptionist(config, scripted, folder / "receptionist.log")
    capture = None
    try:
        receptionist.wait_ready(warmed=phase.asr.get("warm", 1) != 0)
        capture = Capture(folder / "capture.pcap")
        readings = clock_readings()
        specs = _call_specs(phase, wavs, first_number)
        workers = start_phones(ast, specs, folder)
        receptionist.start_measuring()
        profile = _profile(receptionist, phase, folder) if phase.profile_s else None
        while any(w.poll() is None for w, _ in workers):
            receptionist.sample()
            time.sleep(0.5)
        cpu = receptionist.cpu_percent()
        if profile is not None:
            profile.wait(60)
        readings += clock_readings()
        phoned = phone_results(workers, folder)
        time.sleep(1.0)  # the last calls' ends reach the store
    finally:
        if capture is not None:
            capture.stop()
        receptionist.stop()
    offset = clock_offset(readings)
    wire = sip_calls(read_pcap(folder / "capture.pcap"))
    traces = _traces(store)
    figures = [_figures(p, wire.get(p["sip_call_id"]), traces.get(p["number"]), offset, p["number"] in
                        {s["number"] for s in specs if s.get("burst")}) for p in phoned]
    return PhaseResult(phase, figures, cpu, receptionist.rss_peak_kb / 1024, receptionist.engines(),
                       time.monotonic() - started, folder / "profile.txt" if phase.profile_s else None)


def _call_specs(phase: Phase, wavs: dict[str, Path], first_number: int) -> list[dict[str, Any]]:
    t0 = time.monotonic() + 4.0  # the phone processes start and create their endpoints
    specs: list[dict[str, Any]] = [
        {"number": f"+336{first_number + i:08d}", "start_at": t0 + i * phase.stagger_s,
         "turns": [str(wavs[t]) for t in phase.scripts[i % len(phase.scripts)]]} for i in range(phase.calls)]
    specs += [{"number": f"+336{first_number + phase.calls + i:08d}", "start_at": t0 + phase.burst_after_s,
               "turns": [], "hang_up_after_s": 6.0, "burst": True} for i in range(phase.burst)]
    return specs


def start_phones(ast: Any, specs: list[dict[str, Any]], folder: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    from agent.devtools.asterisk import SOFTPHONE_USER

    workers = []
    for k in range(0, len(specs), CALLS_PER_PHONE_PROCESS):
        spec = {"server": f"127.0.0.1:{ast.ports.sip}", "user": SOFTPHONE_USER, "password": ast.softphone_password,
                "uri": ast.sip_uri, "record_dir": str(folder), "calls": specs[k:k + CALLS_PER_PHONE_PROCESS]}
        spec_file, out = folder / f"phones-{k}.json", folder / f"phones-{k}.out.json"
        spec_file.write_text(json.dumps(spec))
        with open(folder / f"phones-{k}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "agent.bench.phone", str(spec_file), str(out)],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        workers.append((proc, out))
    return workers


def phone_results(workers: list[tuple[subprocess.Popen[bytes], Path]], folder: Path) -> list[dict[str, Any]]:
    """What each call of the phone processes did (once they have exited)."""
    phoned: list[dict[str, Any]] = []
    for w, out in workers:
        if w.wait() != 0 or not out.exists():
            raise RuntimeError(f"a phone process failed ({w.returncode}); see {folder}")
        phoned += json.loads(out.read_text())
    return phoned


def _profile(receptionist: Receptionist, phase: Phase, folder: Path) -> subprocess.Popen[bytes] | None:
    """py-spy samples the receptionist's threads (native frames off) while the calls are at their peak."""
    exe = REPO / ".venv/bin/py-spy"
    if not exe.exists():
        return None
    return subprocess.Popen([str(exe), "record", "--pid", str(receptionist.proc.pid), "--duration",
                             str(int(phase.profile_s)), "--rate", "100", "--format", "raw", "--nonblocking",
                             "-o", str(folder / "profile.txt")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _traces(store: Path) -> dict[str, list[tuple[str, float]]]:
    """Each call's trace marks (name, s from the call's start), by caller number."""
    conn = connect(store, readonly=True)
    try:
        found = traces(conn)
    finally:
        conn.close()
    return {call.caller_id: [(e["event"], e["ms"] / 1000) for e in marks] for call, marks in found}


def _figures(phoned: dict[str, Any], wire: WireCall | None, marks: list[tuple[str, float]] | None,
             offset: float, burst: bool) -> CallFigures:
    out = CallFigures(phoned["number"], burst, bool(phoned["confirmed"]) and wire is not None)
    if wire is None or wire.ok_at is None:
        return out
    out.invite_to_ok_ms = (wire.ok_at - wire.invite_at) * 1000
    first = next((at for at, audible in wire.heard if audible), None)
    if first is not None:
        out.answer_ms = (first - wire.invite_at) * 1000
    gaps = late_frames([at for at, _ in wire.heard])
    out.late_frames, out.max_gap_ms = gaps.late, gaps.max_gap_s * 1000
    spoken = [(s + offset, e + offset) for s, e in phoned["spoken"]]
    said = turns(wire.said, wire.heard, spoken)
    out.turn_ms = [t.latency_s * 1000 for t in said if t.latency_s is not None]
    out.unanswered_turns = sum(t.latency_s is None for t in said)
    out.turns_planned = int(phoned.get("turns_planned", 0))
    if marks:
        out.acks = sum(name == "ack" for name, _ in marks)
        out.utterances = sum(name == "end_of_utterance" for name, _ in marks)
        out.ends_decided = sum(name.startswith("turn_end_") for name, _ in marks)
        answered = next((t for name, t in marks if name == "answered"), None)
        if answered is not None:
            shift = wire.ok_at - answered  # the trace onto the capture's clock
            on_wire = [(name, t + shift) for name, t in marks]
            out.cut_offs = sum(1 for name, t in on_wire if name == "end_of_utterance"
                               and any(start < t < end - CUT_MARGIN_S for start, end in spoken))
            ends = [t for name, t in on_wire if name == "end_of_utterance"]
            out.turns_unheard = sum(not any(start < t <= end + HEARD_WITHIN_S for t in ends) for start, end in spoken)
            parts = [t for name, t in on_wire if name == "voice_message_part"]
            message = [t for t in said if any(t.speech_end < p < (t.reply_at or float("inf")) for p in parts)]
            said = [t for t in said if t not in message]
            out.turn_ms = [t.latency_s * 1000 for t in said if t.latency_s is not None]
            out.message_end_ms = [t.latency_s * 1000 for t in message if t.latency_s is not None]
            out.stages_ms = [{k: v * 1000 for k, v in stage_breakdown(on_wire, t.speech_end, t.reply_at).items()}
                             for t in said]
    return out
