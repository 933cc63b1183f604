"""`make bench` (`python -m agent.bench [--quick]`): answer time, turn latency and capacity, timed
at real SIP phones on a private Asterisk, with `standardiste run` as the receptionist.

Phases, each with a fresh store and a fresh receptionist process, whose calls begin once it is ready
and its recognisers are warmed (a box that has been up):
- one call (a booking; streaming, the product) and the same call with `call.pipeline: naive` (the
  baseline); concurrent calls play the seed's call and the scenario corpus (`corpus()`), in turn;
- each measured change against its former behaviour (a setting), on the same calls (full only),
  and the end of a turn (fixed 700 ms, fixed 300 ms, the words, the sound) on the booked call and on
  the pause set, callers pausing mid-sentence (both profiles);
- the sweep: 2, 4, 8, 12, 16 concurrent conversations (quick: 4), py-spy sampling the 8-call level;
- answer under load: a burst of 8 new calls while 8 conversations are in progress (full only).
The figures go to bench/results/<date>-<host>.json and .png, and a summary to bench/README.md; a
figure over its target is printed as such. The bench never fails on a figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Final

from agent.bench.calls import REPO, Phase, run_phase
from agent.bench.report import (
    comparisons,
    comparisons_table,
    goals_table,
    hot_path,
    machine_facts,
    markdown,
    phase_figures,
    write_json,
    write_png,
)

CALLER_TURNS: Final = ("Bonjour, mon évier est bouché depuis ce matin.", "Jean Martin.",
                       "12 avenue Jean Médecin à Nice.", "Oui c'est ça.", "Le premier.")
"""A whole normal call, booked (the demo's second call): five turns, then the receptionist hangs up.
The one-call phases all play it, so that their figures compare from run to run."""
PAUSED_TURNS: Final = ("Bonjour, | euh, | mon évier est bouché | depuis ce matin.", "Jean | Martin.",
                       "C'est au douze | avenue Jean Médecin, | à Nice.", "Oui | c'est ça.", "Le premier.")
"""The booked call again, said as callers say it: pauses of 500 ms (`|`, devtools/speech.py PAUSE_MS) after
"euh", inside a name, before the town, after "oui". A turn ended at one of them is a caller cut
mid-sentence (`cut_offs`)."""
NUMBER_TURNS: Final = ("Bonjour, ma chasse d'eau fuit.", "Paul Girard.", "8 rue de France à Nice.",
                       "Non, rappelez-moi plutôt au | zéro six, | douze, | trente-quatre, | cinquante-six, "
                       "| soixante-dix-huit.", "Oui.", "Le premier.")
"""A number dictated in pairs with a pause after each (the recap's correction)."""
END_OF_TURN: Final[tuple[tuple[dict[str, object], str, str], ...]] = (
    ({"pause_ms": 0}, "fixed-700", "end of turn: 700 ms of silence (now a decision at 200 ms)"),
    ({"pause_ms": 0, "hangover_ms": 300}, "fixed-300",
     "end of turn: 300 ms of silence (now a decision at 200 ms, else 700 ms)"),
    ({"turn_model": "true"}, "sound", "end of turn: the words or Smart Turn's sound (now the words alone)"),
    ({"engine": "webrtc"}, "webrtcvad", "voice activity: webrtcvad (now Silero VAD)"),
)
"""The end of a turn as it was (a fixed pause), a shorter fixed pause, with the sound model too, and
with webrtcvad instead of Silero VAD, each against the product on the same calls (issue 22)."""
COLD_ASR: Final = "a new recogniser for every call (now kept between calls, two warmed at start)"
CORPUS: Final = ("seed.yaml", "plombier.yaml")
"""The scenarios the concurrent calls play (tests/data/scenarios, the bench's dialplan: plombier)."""
ACK_AFTER_BUDGET: Final = ("the acknowledgement only after the dead-air budget (now at once when the reply is known "
                           "to come later: the recogniser behind, or a first audio to synthesise)")
QUICK_TURNS: Final = 3
SWEEP: Final = (2, 4, 8, 12, 16)
PROFILED_LEVEL: Final = 8
BURST: Final = 8


def corpus(quick: bool) -> tuple[tuple[str, ...], ...]:
    """The seed's call, then the plombier scenarios, each as what its caller says turn by turn. Left
    out: scenarios of other trades (the bench runs one dialplan), silent callers (no turn to time) and
    masked numbers (their turns answer a question a bench phone, which shows its number, is not asked).
    The seed's emergency is transferred to the artisan's phone, which is not registered in the bench:
    the transfer fails at once and the caller is offered a voice message."""
    import yaml

    out = []
    for name in CORPUS:
        for sc in yaml.safe_load_all((REPO / "tests" / "data" / "scenarios" / name).read_text(encoding="utf-8")):
            turns = tuple(t for t in sc.get("turns", ()) if t.strip())
            if sc.get("dialplan") == "plombier" and turns and sc.get("caller_id", "anonymous") != "anonymous":
                out.append(turns[:QUICK_TURNS] if quick else turns)
    return tuple(out)


def phases(quick: bool) -> list[Phase]:
    booking = CALLER_TURNS[:QUICK_TURNS] if quick else CALLER_TURNS
    one = (booking,)
    calls = corpus(quick)
    out = [Phase("1-call", 1, one), Phase("1-call-naive", 1, one, pipeline="naive")]
    paused = (PAUSED_TURNS, NUMBER_TURNS)
    out.append(Phase("pauses", 2, paused))
    for vad, name, change in END_OF_TURN:
        out += [Phase(f"1-call-{name}", 1, one, vad=vad, against="1-call", change=change),
                Phase(f"pauses-{name}", 2, paused, vad=vad, against="pauses", change=change + ", pause set")]
    cold: dict[str, object] = {"keep": 0, "warm": 0}
    out.append(Phase("1-call-asr-cold", 1, one, asr=cold, against="1-call", change=COLD_ASR))
    out.append(Phase("1-call-ack-after-budget", 1, one, call={"ack_early": False}, against="1-call",
                     change=ACK_AFTER_BUDGET))
    if not quick:  # each measured change against its former behaviour, in the same run
        out += [Phase("1-call-ack-700ms", 1, one, call={"ack_after_ms": 700}, against="1-call",
                      change="dead-air budget 700 ms (now 300 ms)"),
                Phase("1-call-recogniser-blocking", 1, one, call={"recogniser_setup": "blocking"}, against="1-call",
                      change="recogniser made on the event loop before the greeting (now in a worker thread)")]
    for n in (4,) if quick else SWEEP:
        out.append(Phase(f"{n}-calls", n, calls, profile_s=20.0 if n == PROFILED_LEVEL else 0.0))
    out.append(Phase("4-calls-asr-cold", 4, calls, asr=cold, against="4-calls", change=COLD_ASR))
    out.append(Phase("4-calls-ack-after-budget", 4, calls, call={"ack_early": False}, against="4-calls",
                     change=ACK_AFTER_BUDGET))
    out.append(Phase("4-calls-dead-air-800", 4, calls, call={"dead_air_ms": 800}, against="4-calls",
                     change="the acknowledgement at most 800 ms after the caller's last word (now 300 ms after "
                            "the decision: call.dead_air_ms 0)"))
    if not quick:
        loaded = f"{BURST}-calls-plus-burst"
        out += [Phase(loaded, BURST, calls, burst=BURST),
                Phase(f"{loaded}-asr-nice-0", BURST, calls, burst=BURST, asr={"nice": 0}, against=loaded,
                      change="recognition at the event loop's priority (now nice 10)")]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m agent.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 and 4 calls, three turns each (under 3 minutes)")
    ap.add_argument("--out", default=str(REPO / "bench"), help="where results/ and README.md are")
    ap.add_argument("--run-dir", default=str(REPO / ".run" / "bench"))
    ap.add_argument("--keep", action="store_true", help="keep the work files (logs, captures, recordings)")
    ap.add_argument("--only", help="run only the phases whose name contains this (e.g. 4-calls), or the one "
                                   "named exactly so when there is one (1-call)")
    args = ap.parse_args(argv)
    if shutil.which("tcpdump") is None:
        print("bench: tcpdump is not installed (make deps installs it): the phones' timings come from a capture",
              file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("bench: run as root (tcpdump captures the loopback)", file=sys.stderr)
        return 2
    from agent.admin import setup_logging
    from agent.devtools.run import dev_asterisk
    from agent.devtools.speech import speech_files

    setup_logging("warning")
    started = time.monotonic()
    out = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    ast = dev_asterisk(Path(args.run_dir), sip_port=0)
    ast.render()
    print(f"bench: a private Asterisk {ast.install.version}, `standardiste run`, pjsua2 phones, tcpdump on lo"
          f" ({'quick' if args.quick else 'full'} profile); work files in {work}", flush=True)
    ast.start()
    results = []
    try:
        wavs: dict[str, Path] = {}
        for k, script in enumerate((CALLER_TURNS, PAUSED_TURNS, NUMBER_TURNS, *corpus(False))):
            folder = work / f"script-{k}"
            folder.mkdir()
            wavs.update(zip(script, speech_files(folder, script), strict=True))
        number = 10000000
        todo = phases(args.quick)
        if args.only:
            exact = [p for p in todo if p.name == args.only]
            todo = exact or [p for p in todo if args.only in p.name]
        for phase in todo:
            print(f"bench: {phase.name} ({phase.pipeline}) ...", end=" ", flush=True)
            r = run_phase(ast, phase, wavs, work, number)
            number += phase.calls + phase.burst
            figs = phase_figures(r)
            results.append((r, figs))
            print(f"turn p50 {_ms(figs['turn_ms']['p50'])} p95 {_ms(figs['turn_ms']['p95'])}, answer p95 "
                  f"{_ms((figs['burst_answer_ms'] if phase.burst else figs['answer_ms'])['p95'])}, "
                  f"late frames {figs['late_frames']}, CPU {figs['receptionist_cpu_percent_of_one_core']} % "
                  f"({r.wall_s:.0f} s)" + (f"; after a voice message's part, {_ms(figs['message_end_ms']['max'])} "
                                          "(waits for more by design, not a turn)" if figs["message_end_ms"]["n"]
                                          else ""), flush=True)
    finally:
        ast.stop()
    from agent.bench.report import build_summary

    figures = [f for _, f in results]
    summary = build_summary(figures)
    profiled = next((r for r, _ in results if r.profile is not None), None)
    hot = hot_path(profiled.profile, profiled.phase.calls) if profiled and profiled.profile else None
    stem = f"{datetime.now():%Y-%m-%d-%H%M}-{platform.node()}"
    models = sorted({e for f in figures for e in f["engines"]})
    facts = machine_facts(ast.install.version, models)
    write_json(out / "results" / f"{stem}.json", summary, figures, facts, hot, args.quick)
    write_png(out / "results" / f"{stem}.png", figures)
    readme = out / "README.md"
    with open(readme, "a", encoding="utf-8") as f:
        f.write(markdown(summary, figures, facts, f"{stem}.json", f"{stem}.png", args.quick, hot))
    print("\n" + goals_table(summary))
    if compared := comparisons(figures):
        print("\nbefore -> after, in this run:\n" + comparisons_table(compared))
    if max(summary["levels_measured"], default=0) < 12:
        print("(quick profile: levels " + ", ".join(map(str, summary["levels_measured"])) + " only)")
    if hot:
        print(f"\nhot path under {hot['calls']} calls (py-spy):")
        for name, share in hot["top"][:8]:
            print(f"  {share:6.1%}  {name}")
    print(f"\nbench: {out / 'results' / stem}.json and .png, summary appended to {readme} "
          f"({time.monotonic() - started:.0f} s)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
