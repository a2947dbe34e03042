"""Guard's history: the scenario's recent actions and payops's own, each on its own clock.

`GuardInput.past_actions` joins `context.recent_actions` (aged from the end of the data
window) and the ledger's entries (aged on the wall clock when guard ran); every pacing rule
and the cumulative shift limits read that one list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.contract import Decision, ScenarioContext
from tools.guardrails import GuardInput, GuardLimits, evaluate
from tools.guardrails.base import PastAction
from tools.routes import RouteStats, SegmentSnapshot


def _input(
    decision: Decision, *, context: ScenarioContext, history: tuple[PastAction, ...]
) -> GuardInput:
    routes = {
        "acq_a": RouteStats("acq_a", 500, 300, 150, 2_500, 2_300),  # in trouble
        "acq_b": RouteStats("acq_b", 500, 470, 0, 2_500, 2_350),  # healthy and better
    }
    snap = SegmentSnapshot(
        segment={"processor": "acq_a"},
        attempts=500,
        approved=300,
        baseline_attempts=2_500,
        baseline_approved=2_300,
        routes=routes,
        total_attempts=10_000,
    )
    return GuardInput(
        decision=decision,
        snapshot=snap,
        evidence_attempts=500,
        context=context,
        now=datetime(2026, 3, 1, 7, 0, tzinfo=UTC),  # data time: the end of the window
        root_cause=(),
        ledger_history=history,
    )


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


def test_ledger_actions_are_aged_on_the_wall_clock_and_listed_ones_on_the_data_clock() -> None:
    wall = datetime(2031, 5, 5, 9, 0, tzinfo=UTC)
    mine = PastAction.of(
        "shift_traffic", SHIFT.params, wall - timedelta(minutes=5), wall, "ledger, run-1"
    )
    verdict = evaluate(_input(SHIFT, context=ScenarioContext(), history=(mine,)), GuardLimits())
    assert verdict.status == "blocked"
    assert {v.rule for v in verdict.violations} == {"segment_cooldown"}
    # 20 % + 20 % is within the 50 pp step: only the cooldown holds it.

    old = PastAction.of(
        "shift_traffic", SHIFT.params, wall - timedelta(minutes=50), wall, "ledger, run-1"
    )
    assert (
        evaluate(_input(SHIFT, context=ScenarioContext(), history=(old,)), GuardLimits()).status
        == "approved"
    )

    listed = ScenarioContext.model_validate(
        {"recent_actions": [{**SHIFT.model_dump(), "ts": "2026-03-01T06:55:00Z"}]}
    )
    verdict = evaluate(_input(SHIFT, context=listed, history=()), GuardLimits())
    assert [v.rule for v in verdict.violations] == ["segment_cooldown"]


def test_the_hourly_cap_counts_both_sources_together() -> None:
    wall = datetime(2031, 5, 5, 9, 0, tzinfo=UTC)
    elsewhere = {
        "segment": {"processor": "acq_z"},
        "from_processor": "acq_z",
        "to_processor": "acq_y",
        "percent": 10,
    }
    mine = tuple(
        PastAction.of("shift_traffic", elsewhere, wall - timedelta(minutes=20 + i), wall, "ledger")
        for i in range(3)
    )
    listed = ScenarioContext.model_validate(
        {
            "recent_actions": [
                {
                    "action": "shift_traffic",
                    "params": elsewhere,
                    "ts": f"2026-03-01T06:{10 + i}:00Z",
                }
                for i in range(3)
            ]
        }
    )
    verdict = evaluate(_input(SHIFT, context=listed, history=mine), GuardLimits())
    assert [v.rule for v in verdict.violations] == ["hourly_action_rate"]
    assert "6 actions in the last hour" in verdict.violations[0].detail
