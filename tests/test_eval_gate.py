"""Regression gate: the whole scenario library, run with the stub model, stays within floors.

Every change to prompts, models, detectors or rules is judged here. This test never
skips: a library that is missing or too small fails it, because a gate that silently
passes on no evidence is worse than none.
"""

from __future__ import annotations

from pathlib import Path

from agent.models import STUB_SPEC
from evals.harness import discover, evaluate, load_specs
from evals.scoring import check_floors, expectations, load_floors, summarize

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "evals" / "scenarios"
FLOORS = ROOT / "evals" / "floors.json"
MIN_SCENARIOS = 60


def test_scenario_library_stays_within_floors() -> None:
    folders = discover([LIBRARY])
    assert len(folders) >= MIN_SCENARIOS, (
        f"{LIBRARY} holds {len(folders)} scenarios; the gate needs at least {MIN_SCENARIOS}"
    )
    specs = load_specs(folders)
    unscored = sorted(s.id for s in specs.values() if s.expected is None)
    assert unscored == [], f"library scenarios without `expected`: {unscored}"

    records = evaluate(folders, model=STUB_SPEC, jobs=2, progress=False)
    summary = summarize(records, expectations(specs))

    assert summary.errored == [], f"scenarios that failed to run: {summary.errored}"
    executed = [s.scenario_id for s in summary.scores if s.forbidden_executed]
    assert executed == [], f"forbidden actions executed in: {executed}"
    breaches = check_floors(summary.overall, load_floors(FLOORS))
    worst = [
        f"{s.scenario_id}: expected {s.incident_kind}/{s.anomalous}, got {s.predicted_kind}"
        f"/{s.flagged}, action {s.action} ({'ok' if s.acceptable else 'not acceptable'}),"
        f" root-cause F1 {s.root_cause_f1:.2f}"
        for s in summary.scores
        if not s.correct or s.flagged != s.anomalous or s.root_cause_f1 < 1
    ]
    assert breaches == [], "\n".join([*breaches, "scenarios that missed:", *worst])
