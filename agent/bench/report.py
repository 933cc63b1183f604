"""The bench's output: every figure as JSON with the machine's facts, a PNG (latency CDFs per level
and the per-stage breakdown), and a Markdown summary appended to bench/README.md."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from agent.bench.calls import PhaseResult
from agent.bench.stats import STAGE_NAMES, percentile, summary

TARGETS: Final = {
    "answer_ms_p95": 150.0,
    "turn_ms_p50": 600.0,
    "turn_ms_p95": 900.0,
    "turn_ms_p95_concurrent": 1200.0,
    "naive_ratio": 0.35,
}
"""Issue 12's goals on a 2-core box; a figure over its target is printed as such, never a failure."""
MIN_CALLS_TARGET: Final = 12
PACKAGES: Final = ("vosk", "piper-tts", "llama-cpp-python", "numpy", "webrtcvad-wheels", "pjsua2-python",
                   "onnxruntime")


def phase_figures(r: PhaseResult) -> dict[str, Any]:
    main = [c for c in r.calls if not c.burst]
    burst = [c for c in r.calls if c.burst]
    turn_ms = [t for c in main for t in c.turn_ms]
    stages: dict[str, list[float]] = {}
    whole = [turn for c in main for turn in c.stages_ms if _matched(turn)]
    for turn in whole:
        for k, v in turn.items():
            stages.setdefault(k, []).append(v)
    return {
        "name": r.phase.name, "pipeline": r.phase.pipeline, "concurrent_calls": r.phase.calls,
        "burst_calls": r.phase.burst, "turns_per_script": [len(t) for t in r.phase.scripts],
        "calls_answered": sum(c.answered for c in main), "burst_answered": sum(c.answered for c in burst),
        "answer_ms": summary([c.answer_ms for c in main if c.answer_ms is not None]),
        "burst_answer_ms": summary([c.answer_ms for c in burst if c.answer_ms is not None]),
        "invite_to_200_ms": summary([c.invite_to_ok_ms for c in r.calls if c.invite_to_ok_ms is not None]),
        "turn_ms": summary(turn_ms),
        "reply_ms": summary([sum(turn.values()) for turn in whole]),
        "message_end_ms": summary([t for c in main for t in c.message_end_ms]),
        "turns_unanswered": sum(c.unanswered_turns for c in main),
        "acknowledgements": sum(c.acks for c in main),
        "pauses_said": sum(t.count("|") for c in range(r.phase.calls)
                           for t in r.phase.scripts[c % len(r.phase.scripts)]),
        "cut_offs": sum(c.cut_offs for c in main),
        "turns_unheard": sum(c.turns_unheard for c in main),
        "ends_decided": sum(c.ends_decided for c in main),
        "call_settings": r.phase.call, "asr_settings": r.phase.asr, "vad_settings": r.phase.vad,
        "against": r.phase.against, "change": r.phase.change,
        "late_frames": sum(c.late_frames for c in r.calls),
        "max_gap_ms": max((c.max_gap_ms for c in r.calls), default=0.0),
        "turns_broken_down": len(whole),
        "stage_ms_p50": {k: percentile(v, 50) for k, v in stages.items()},
        "stage_ms_mean": {k: sum(v) / len(v) for k, v in stages.items()},
        "receptionist_cpu_percent_of_one_core": round(r.cpu_percent, 1),
        "receptionist_rss_peak_mb": round(r.rss_peak_mb, 1),
        "engines": r.engines, "wall_s": round(r.wall_s, 1),
        "calls": [asdict(c) for c in r.calls],
    }


MAX_DECISION_MS: Final = 2000.0
"""A turn's end-of-utterance mark this long after the caller's end of speech belongs to another
utterance (the caller spoke while the receptionist was still busy with the previous one)."""


def _matched(turn: dict[str, float]) -> bool:
    """Every stage of the turn was found, in order, and the decision belongs to this utterance."""
    return "reply_first_frame" in turn and turn.get("end_of_utterance", 1e9) <= MAX_DECISION_MS


def build_summary(phases: list[dict[str, Any]]) -> dict[str, Any]:
    # The product's settings only: a phase run with other settings is a before/after comparison.
    product = [p for p in phases if not p.get("against")]
    streaming = [p for p in product if p["pipeline"] == "streaming" and not p["burst_calls"]]
    one = next((p for p in streaming if p["concurrent_calls"] == 1), None)
    naive = next((p for p in product if p["pipeline"] == "naive"), None)
    loaded = next((p for p in product if p["burst_calls"]), None)
    answers = (loaded["burst_answer_ms"] if loaded else
               max((p["answer_ms"] for p in streaming), key=lambda a: a["p95"] or 0, default=None))
    holding = [p["concurrent_calls"] for p in streaming
               if p["turn_ms"]["p95"] is not None and p["turn_ms"]["p95"] <= TARGETS["turn_ms_p95_concurrent"]
               and p["late_frames"] == 0 and p["turns_unanswered"] == 0
               and p["calls_answered"] == p["concurrent_calls"]]
    ratio = None
    if one and naive and one["turn_ms"]["p50"] and naive["turn_ms"]["p50"]:
        ratio = one["turn_ms"]["p50"] / naive["turn_ms"]["p50"]
    return {
        "answer_ms_p95": answers["p95"] if answers else None,
        "answer_ms_p95_measured_on": ("a burst of new calls while conversations are in progress" if loaded
                                      else "the busiest level (no burst phase in this profile)"),
        "turn_ms_p50": one["turn_ms"]["p50"] if one else None,
        "turn_ms_p95": one["turn_ms"]["p95"] if one else None,
        "max_calls_within_target": max(holding, default=0),
        "levels_measured": [p["concurrent_calls"] for p in streaming],
        "naive_ratio": ratio,
    }


def goals_table(s: dict[str, Any]) -> str:
    """The goals against what was measured, as a text table (what `make bench` prints last)."""
    rows = [("answer p95 (" + ("burst during conversations" if s["answer_ms_p95_measured_on"].startswith("a burst")
                               else "busiest level") + ")", s["answer_ms_p95"], "<= 150 ms",
             s["answer_ms_p95"] is not None and s["answer_ms_p95"] <= TARGETS["answer_ms_p95"]),
            ("turn p50, one call", s["turn_ms_p50"], "<= 600 ms",
             s["turn_ms_p50"] is not None and s["turn_ms_p50"] <= TARGETS["turn_ms_p50"]),
            ("turn p95, one call", s["turn_ms_p95"], "<= 900 ms",
             s["turn_ms_p95"] is not None and s["turn_ms_p95"] <= TARGETS["turn_ms_p95"]),
            ("calls holding turn p95 <= 1.2 s, no late frame", s["max_calls_within_target"], f">= {MIN_CALLS_TARGET}",
             s["max_calls_within_target"] >= MIN_CALLS_TARGET),
            ("ours / naive, turn p50", s["naive_ratio"], "<= 0.35",
             s["naive_ratio"] is not None and s["naive_ratio"] <= TARGETS["naive_ratio"])]
    out = [f"{'goal':<48} {'measured':>9}  {'target':<10} verdict", "-" * 80]
    for name, value, target, ok in rows:
        shown = "-" if value is None else (f"{value:.2f}" if isinstance(value, float) and value < 10 else
                                          f"{value:.0f}")
        short = "UNDER TARGET" if target.startswith(">=") else "OVER TARGET"
        verdict = "ok" if ok else short if value is not None else "not measured"
        out.append(f"{name:<48} {shown:>9}  {target:<10} {verdict}")
    return "\n".join(out)


COMPARED: Final = ("answer p95 ms", "turn p50 ms", "turn p95 ms", "reply p95 ms", "late frames", "acks", "cut-offs",
                   "turns unheard")
"""A turn is the caller's last word to the first sound they hear (an acknowledgement, if one plays);
the reply is the caller's last word to the reply's own first frame, after any acknowledgement (the
turns broken down by stage, `reply_ms`)."""


def _compared(p: dict[str, Any], label: str) -> Any:
    if label == "answer p95 ms":  # a burst phase: its new calls' answers
        return (p["burst_answer_ms"] if p["burst_calls"] else p["answer_ms"])["p95"]
    if label in ("cut-offs", "turns unheard"):
        return p.get(label.replace("-", "_").replace(" ", "_"))  # (results written before issue 22 have none)
    if label.startswith("turn"):
        return p["turn_ms"][label.split()[1]]
    if label == "reply p95 ms":  # (results written before the dead-air budget counted from the last word have none)
        return p.get("reply_ms", {}).get("p95")
    return p["late_frames"] if label == "late frames" else p["acknowledgements"]


def comparisons(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each change against its former behaviour, measured in this run on the same calls: the figures
    of the phase with the former setting (before) and of the product's phase (after)."""
    by_name = {p["name"]: p for p in phases}
    out = []
    for p in phases:
        now = by_name.get(p.get("against") or "")
        if now is not None:
            out.append({"change": p["change"], "before_phase": p["name"], "after_phase": now["name"],
                        "figures": {k: {"before": _compared(p, k), "after": _compared(now, k)} for k in COMPARED}})
    return out


def comparisons_table(rows: list[dict[str, Any]]) -> str:
    """The before/after table `make bench` prints (and the README summary holds)."""
    out = []
    for row in rows:
        out.append(f"{row['change']} ({row['before_phase']} -> {row['after_phase']}):")
        out += [f"  {label:<14} {_fmt(v['before']):>7} -> {_fmt(v['after']):>7}" for label, v in row["figures"].items()]
    return "\n".join(out)


def verdicts(s: dict[str, Any]) -> list[str]:
    """One line per goal: the figure, its target, and whether it holds."""
    def line(label: str, value: float | None, target: float, unit: str, more_is_better: bool = False) -> str:
        if value is None:
            return f"{label}: not measured (target {target:g}{unit})"
        ok = value >= target if more_is_better else value <= target
        return f"{label}: {value:.{2 if unit == '' else 0}f}{unit} (target {'>=' if more_is_better else '<='} " \
               f"{target:g}{unit}){'' if ok else '  <-- OVER TARGET' if not more_is_better else '  <-- UNDER TARGET'}"

    return [line("answer p95", s["answer_ms_p95"], TARGETS["answer_ms_p95"], " ms"),
            line("turn p50, one call", s["turn_ms_p50"], TARGETS["turn_ms_p50"], " ms"),
            line("turn p95, one call", s["turn_ms_p95"], TARGETS["turn_ms_p95"], " ms"),
            line("concurrent calls holding turn p95 <= 1.2 s, no late frame", float(s["max_calls_within_target"]),
                 MIN_CALLS_TARGET, "", more_is_better=True)
            + ("" if max(s["levels_measured"], default=0) >= MIN_CALLS_TARGET else " (quick profile: levels "
               + ", ".join(map(str, s["levels_measured"])) + " only)"),
            line("ours / naive, turn p50", s["naive_ratio"], TARGETS["naive_ratio"], "")]


def machine_facts(asterisk_version: str, models: list[str]) -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal:"))
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"host": platform.node(), "cores": os.cpu_count(), "cpu": cpu, "memory_gb": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "asterisk": asterisk_version,
            "packages": versions, "models": models}


def write_json(path: Path, summary_: dict[str, Any], phases: list[dict[str, Any]], facts: dict[str, Any],
               profile: dict[str, Any] | None, quick: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"summary": summary_, "targets": TARGETS, "profile": "quick" if quick else "full",
           "units": {"*_ms": "milliseconds", "cpu_percent": "% of one core", "rss": "MiB"},
           "date": datetime.now().astimezone().isoformat(timespec="seconds"), "machine": facts,
           "comparisons": comparisons(phases), "phases": phases, "hot_path": profile}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))


def write_png(path: Path, phases: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, bars) = plt.subplots(1, 2, figsize=(13, 5))
    for p in phases:
        if p["burst_calls"]:
            continue
        values = sorted(t for c in p["calls"] for t in c["turn_ms"])
        if values:
            label = p["name"]
            cdf.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", label=label,
                     linestyle="--" if p["pipeline"] == "naive" else "-")
    cdf.axvline(TARGETS["turn_ms_p95_concurrent"], color="grey", linewidth=0.8)
    cdf.set_xlabel("turn latency at the phone, ms (caller's end of speech -> first reply audio)")
    cdf.set_ylabel("share of turns")
    cdf.legend(fontsize=8)
    cdf.grid(alpha=0.3)
    shown = [p for p in phases if p["stage_ms_mean"] and not p["burst_calls"]]
    bottoms = [0.0] * len(shown)
    for stage, label in STAGE_NAMES.items():
        heights = [p["stage_ms_p50"].get(stage) or 0.0 for p in shown]
        bars.bar(range(len(shown)), heights, bottom=bottoms, label=label)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    bars.set_xticks(range(len(shown)), [p["name"] for p in shown], rotation=30, ha="right", fontsize=8)
    bars.set_ylabel("ms per turn (p50 of each stage)")
    bars.set_title("where a turn's time goes")
    bars.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(summary_: dict[str, Any], phases: list[dict[str, Any]], facts: dict[str, Any], json_name: str,
             png_name: str, quick: bool, hot: dict[str, Any] | None) -> str:
    lines = [f"## {datetime.now():%Y-%m-%d %H:%M} on {facts['host']} ({facts['cores']} cores, "
             f"{'quick' if quick else 'full'} profile)", "",
             f"Figures: [`results/{json_name}`](results/{json_name}), "
             f"chart: [`results/{png_name}`](results/{png_name}).",
             "Engines: " + "; ".join(sorted({e for p in phases for e in p["engines"]})) + ".", ""]
    lines += [f"- {v}" for v in verdicts(summary_)] + [""]
    lines += ["| phase | pipeline | answered | answer p95 ms | turn p50 ms | turn p95 ms | acks | late frames | "
              "CPU % of a core | RSS MiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in phases:
        ans = p["burst_answer_ms"] if p["burst_calls"] else p["answer_ms"]
        lines.append(f"| {p['name']} | {p['pipeline']} | {p['calls_answered'] + p['burst_answered']}/"
                     f"{p['concurrent_calls'] + p['burst_calls']} | {_fmt(ans['p95'])} | {_fmt(p['turn_ms']['p50'])} | "
                     f"{_fmt(p['turn_ms']['p95'])} | {p['acknowledgements']} | {p['late_frames']} | "
                     f"{p['receptionist_cpu_percent_of_one_core']} | {p['receptionist_rss_peak_mb']} |")
    rows = comparisons(phases)
    if rows:
        lines += ["", "Before and after, in this run (the former behaviour is a setting; same calls):", "",
                  "| change | figure | before | after |", "|---|---|---|---|"]
        lines += [f"| {r['change']} | {label} | {_fmt(v['before'])} | {_fmt(v['after'])} |"
                  for r in rows for label, v in r["figures"].items()]
    one = next((p for p in phases if p["concurrent_calls"] == 1 and p["pipeline"] == "streaming"
                and not p.get("against")), None)
    if one and one["stage_ms_p50"]:
        lines += ["", "One call, p50 per stage (ms): " + ", ".join(
            f"{STAGE_NAMES[k]} {_fmt(v)}" for k, v in one["stage_ms_p50"].items() if k in STAGE_NAMES) + "."]
    if hot:
        lines += ["", f"Hot path under {hot['calls']} calls (py-spy, {hot['samples']} samples, "
                  "share of the receptionist's samples):"]
        lines += [f"- {share:.1%} {name}" for name, share in hot["top"][:8]]
    return "\n".join(lines) + "\n\n"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def hot_path(profile: Path, calls: int) -> dict[str, Any] | None:
    """py-spy's raw (collapsed) stacks summed by the innermost frame of our code or of a library."""
    if not profile.exists():
        return None
    counts: dict[str, int] = {}
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        ours = next((f for f in reversed(frames) if "(agent/" in f or "/agent/" in f), None)
        key = leaf if ours is None or ours == leaf else f"{leaf}  <- {ours}"
        counts[key] = counts.get(key, 0) + int(n)
        total += int(n)
    if not total:
        return None
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:15]
    return {"calls": calls, "samples": total, "top": [(k, v / total) for k, v in top]}
