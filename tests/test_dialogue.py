"""Issue 5: the conversation, on written scenarios across the eight trades, plus malformed dialplans."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent.dialogue.simulate import Scenario, load_scenarios, run_sync

SCENARIOS = Path(__file__).parent / "scenarios"
FIELDS = ("name", "address", "phone", "problem", "urgency", "action", "booking")


def all_scenarios() -> list[tuple[str, Scenario]]:
    out = []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        for i, sc in enumerate(load_scenarios(path)):
            if sc.expect is not None:
                out.append((f"{path.stem}-{i + 1}", sc))
    return out


def mismatches(result: dict[str, Any], expect: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    bad = {}
    for key in ("urgency", "action"):
        if key in expect and result[key] != expect[key]:
            bad[key] = (expect[key], result[key])
    for key, want in (expect.get("lead") or {}).items():
        if result["lead"].get(key) != want:
            bad[key] = (want, result["lead"].get(key))
    if "booking" in expect:
        want = expect["booking"]
        got = result["booking"]
        if (want is None) != (got is None) or (want and got and want["start"] != got["start"]):
            bad["booking"] = (want, got)
    return bad


SCORES: Counter[str] = Counter()
TOTALS: Counter[str] = Counter()


@pytest.mark.parametrize(("sid", "scenario"), all_scenarios(), ids=[s for s, _ in all_scenarios()])
def test_scenario(sid: str, scenario: Scenario) -> None:
    assert scenario.expect is not None
    result = run_sync(scenario)
    bad = mismatches(result, scenario.expect)
    checked = [k for k in FIELDS if k in scenario.expect or k in (scenario.expect.get("lead") or {})]
    for k in checked:
        TOTALS[k] += 1
        SCORES[k] += k not in bad
    assert not bad, f"{sid}: {bad}\nreplies: {result['replies']}"


def test_report_accuracy_per_field() -> None:
    """Runs after the scenarios (file order): prints the accuracy per field over all of them."""
    assert len(all_scenarios()) >= 60
    if not TOTALS:
        pytest.skip("scenarios not run in this session")
    lines = [f"{k:8} {SCORES[k]:3}/{TOTALS[k]:3} = {SCORES[k] / TOTALS[k]:.0%}" for k in FIELDS if TOTALS[k]]
    print("\nAccuracy per field over the scenarios:\n" + "\n".join(lines))
    assert all(SCORES[k] == TOTALS[k] for k in TOTALS)
