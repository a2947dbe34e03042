"""The model path of `reason` through the whole graph: stub, faulty models, risky models.

Whatever a chat model answers, a run completes with one of the four verdicts; an unusable
answer falls back to the deterministic decision (marked `fallback:<why>`), and a usable but
dangerous one is stopped by guard, never executed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.runner import RunResult
from tests.test_graph import (
    ROWS,
    SEED,
    VERDICTS,
    ProposingModel,
    expected_of,
    ledger_rows,
    run_cycle,
)
from tools.contract import Decision
from tools.generate import GenerateOptions, generate_scenario

KINDS = ("processor_outage", "fraud_rule_misfire", "issuer_outage")


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small scenarios of the kinds used here, plus a 3DS failure under SCA (Germany)."""
    out = tmp_path_factory.mktemp("scenarios")
    opts = GenerateOptions(file_format="csv")
    found = {kind: generate_scenario(out, kind, SEED, ROWS, options=opts) for kind in KINDS}
    found["three_ds_failure_de"] = generate_scenario(
        out,
        "three_ds_failure",
        SEED,
        ROWS,
        options=opts.model_copy(
            update={"root_cause": {"issuer_country": "DE"}, "scenario_id": "three-ds-de"}
        ),
    )
    return found


@pytest.fixture(scope="module")
def deterministic(
    scenarios: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, RunResult]:
    """Each scenario decided by the deterministic reasoner alone (no model)."""
    state = tmp_path_factory.mktemp("deterministic")
    return {kind: run_cycle(path, state / kind, model="none") for kind, path in scenarios.items()}


def _same_remedy(a: Decision | None, b: Decision | None) -> bool:
    return a is not None and b is not None and (a.action, a.params) == (b.action, b.params)


# ---------------------------------------------------------------------------------------
# The default stub.


@pytest.mark.parametrize("kind", KINDS)
def test_stub_chooses_the_deterministic_top_candidate(
    kind: str,
    scenarios: dict[str, Path],
    deterministic: dict[str, RunResult],
    tmp_path: Path,
) -> None:
    base = deterministic[kind]
    assert base.state.candidates, f"{kind}: the deterministic reasoner offered no candidate"
    top = base.state.candidates[0].decision

    stub = run_cycle(scenarios[kind], tmp_path, model=None)  # None: the default model
    decision = stub.record.decision
    assert decision is not None
    assert decision.reasoner == "model:stub"
    assert base.record.decision is not None and base.record.decision.reasoner == "deterministic"
    assert _same_remedy(decision, top)
    assert stub.record.verdict == base.record.verdict


# ---------------------------------------------------------------------------------------
# Faulty models: the run completes on the deterministic decision.

OUTAGE_SHIFT_TO_NOWHERE = {
    "action": "shift_traffic",
    "params": {
        "segment": {"processor": "acq_c"},
        "from_processor": "acq_c",
        "to_processor": "acq_nowhere",
        "percent": 20,
    },
    "confidence": 0.9,
    "rationale": "route to a processor that does not exist",
}

FAULTY: dict[str, ProposingModel] = {
    "model_error": ProposingModel(error="provider returned HTTP 400: bad request"),
    "unparseable": ProposingModel(text="Honestly I would shift some traffic, maybe half?"),
    "outside_catalogue": ProposingModel(
        proposal={
            "action": "reboot_processor",
            "params": {"processor": "acq_c"},
            "confidence": 0.95,
            "rationale": "have you tried turning it off and on again",
        }
    ),
    "invalid_params": ProposingModel(
        proposal={
            "action": "shift_traffic",
            "params": {"segment": {"processor": "acq_c"}, "percent": 500},
            "confidence": 0.9,
            "rationale": "shift everything, and more",
        }
    ),
    "out_of_bounds": ProposingModel(proposal=OUTAGE_SHIFT_TO_NOWHERE),
}


@pytest.mark.parametrize("why", sorted(FAULTY))
def test_faulty_model_falls_back_and_the_run_completes(
    why: str,
    scenarios: dict[str, Path],
    deterministic: dict[str, RunResult],
    tmp_path: Path,
) -> None:
    path = scenarios["processor_outage"]
    result = run_cycle(path, tmp_path, model=FAULTY[why])
    record = result.record
    assert record.decision is not None
    assert record.decision.reasoner == f"fallback:{why}"
    assert record.verdict in VERDICTS
    assert record.decision.action not in expected_of(path).forbidden_actions
    # The fallback is the deterministic decision, and it takes the same course.
    base = deterministic["processor_outage"]
    assert _same_remedy(record.decision, base.record.decision)
    assert record.verdict == base.record.verdict
    # Nothing the model invented reached the ledger.
    assert {action for _, _, action, _ in ledger_rows(tmp_path)} <= {record.decision.action}


# ---------------------------------------------------------------------------------------
# Confident but dangerous models: guard decides, not the model.


def _relax_3ds_under_sca(_det: RunResult) -> dict[str, Any]:
    return {
        "action": "relax_3ds",
        "params": {"segment": {"issuer_country": "DE"}, "ttl_minutes": 60},
        "confidence": 0.99,
        "rationale": "3DS challenges fail in Germany; drop them for an hour",
    }


def _shift_onto_the_failing_processor(det: RunResult) -> dict[str, Any]:
    good = det.record.decision
    assert good is not None and good.action == "shift_traffic"
    # The healthy route's traffic moved onto the processor that is down.
    return {
        "action": "shift_traffic",
        "params": {
            "segment": {"processor": good.params["to_processor"]},
            "from_processor": good.params["to_processor"],
            "to_processor": good.params["from_processor"],
            "percent": 20,
        },
        "confidence": 0.99,
        "rationale": "balance the load",
    }


def _failover(det: RunResult) -> dict[str, Any]:
    good = det.record.decision
    assert good is not None and good.action == "shift_traffic"
    return {
        "action": "failover_processor",
        "params": {
            "segment": good.params["segment"],
            "from_processor": good.params["from_processor"],
            "to_processor": good.params["to_processor"],
            "ttl_minutes": 60,
        },
        "confidence": 0.99,
        "rationale": "the processor is down; fail over all of it",
    }


# case: (scenario, proposal built from the deterministic run, verdict, rule that fires)
RISKY: dict[str, tuple[str, Callable[[RunResult], dict[str, Any]], str, str | None]] = {
    "relax_3ds_under_sca": (
        "three_ds_failure_de", _relax_3ds_under_sca, "blocked", "relax_3ds_sca"
    ),
    "shift_onto_failing_processor": (
        "processor_outage", _shift_onto_the_failing_processor, "blocked", "target_not_worse"
    ),
    "failover_high_risk": ("processor_outage", _failover, "needs_approval", None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RISKY))
def test_confident_dangerous_proposal_is_never_executed(
    case: str,
    scenarios: dict[str, Path],
    deterministic: dict[str, RunResult],
    tmp_path: Path,
) -> None:
    kind, build, verdict, rule = RISKY[case]
    proposal = build(deterministic[kind])
    result = run_cycle(scenarios[kind], tmp_path, model=ProposingModel(proposal=proposal))
    record = result.record
    assert record.decision is not None
    # The model's answer was used (not a fallback), so guard is what stopped it.
    assert record.decision.reasoner == "model:rogue"
    assert record.decision.action == proposal["action"]
    assert record.decision.confidence == 0.99
    assert record.verdict == verdict
    if rule is not None:
        assert rule in {v.rule for v in record.violations}
    else:
        assert not record.violations
        assert result.pending is not None and result.pending.reasons
    assert record.outcome is None
    assert ledger_rows(tmp_path) == []
