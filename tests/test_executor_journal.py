"""The simulator honours the executor contract: a key is applied once, and it can say so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tools.contract import Decision, ScenarioContext
from tools.executor import SimulatedExecutor, SimulatorJournal
from tools.routes import RouteStats, SegmentSnapshot
from tools.simulator import simulate

SHIFT = Decision(
    action="shift_traffic",
    params={
        "segment": {"processor": "acq_a"},
        "from_processor": "acq_a",
        "to_processor": "acq_b",
        "percent": 20,
    },
    confidence=0.9,
)
SNAP = SegmentSnapshot(
    segment={"processor": "acq_a"},
    attempts=500,
    approved=300,
    baseline_attempts=2_500,
    baseline_approved=2_300,
    total_attempts=10_000,
    routes={
        "acq_a": RouteStats("acq_a", 500, 300, 150, 2_500, 2_300),
        "acq_b": RouteStats("acq_b", 500, 470, 0, 2_500, 2_350),
    },
)


@pytest.mark.parametrize("durable", [True, False])
def test_a_key_is_applied_once_and_the_executor_answers_whether_it_was(
    tmp_path: Path, durable: bool
) -> None:
    journal = tmp_path / "simulator.db" if durable else None
    first, second = SimulatedExecutor(journal), SimulatedExecutor(journal)
    assert first.applied("k1") is None
    outcome = first.execute(SHIFT, "k1", SNAP, ScenarioContext())
    assert first.applied("k1") == outcome
    # Other data would give another estimate: a repeated key must not be applied again.
    later = replace(SNAP, approved=450)
    assert simulate(SHIFT, later, ScenarioContext()) != outcome
    again = (second if durable else first).execute(SHIFT, "k1", later, ScenarioContext())
    assert again == outcome
    if durable:
        assert second.applied("k1") == outcome  # another process's instance knows it too
        with SimulatorJournal(tmp_path / "simulator.db") as records:
            assert records.requests("k1") == 2 and records.requests("k2") == 0


def test_an_execution_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="idempotency key"):
        SimulatedExecutor().execute(SHIFT, "", SNAP, ScenarioContext())
