"""Simulated outcomes of every remedy, and the executor seam with its idempotency keys."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tools.contract import ACTION_NAMES, Decision, ProcessorInfo, ScenarioContext, Segment
from tools.executor import Executor, SimulatedExecutor, idempotency_key
from tools.routes import RouteStats, SegmentSnapshot
from tools.simulator import simulate

SEG: Segment = {"processor": "acq_a", "issuer_country": "BR"}
CONTEXT = ScenarioContext(
    processors={"acq_a": ProcessorInfo(fee_bps=30), "acq_b": ProcessorInfo(fee_bps=45)}
)
CHANGE = {"ts": "2026-03-01T06:00:00Z", "kind": "routing_config", "version": "v7"}
FRAUD_CHANGE = {"ts": "2026-03-01T06:00:00Z", "kind": "fraud_rule", "version": "r42"}


def _snap(
    *,
    segment: Segment | None = None,
    attempts: int = 1000,
    approved: int = 600,
    codes: dict[str, int] | None = None,
    three_ds_failed: int = 0,
    routes: dict[str, RouteStats] | None = None,
    baseline: tuple[int, int] = (6000, 5400),
) -> SegmentSnapshot:
    return SegmentSnapshot(
        segment=segment if segment is not None else SEG,
        attempts=attempts,
        approved=approved,
        baseline_attempts=baseline[0],
        baseline_approved=baseline[1],
        decline_codes=MappingProxyType(codes if codes is not None else {"timeout": 300}),
        three_ds_failed=three_ds_failed,
        total_attempts=10_000,
        routes=MappingProxyType(
            routes
            if routes is not None
            else {
                "acq_a": RouteStats("acq_a", attempts, approved, 300, 6000, 5400),
                "acq_b": RouteStats("acq_b", 800, 720, 0, 4000, 3600),
            }
        ),
    )


def _decision(action: str, **params: Any) -> Decision:
    return Decision(action=action, params=params, confidence=0.9)


def _shift(percent: float, segment: Segment = SEG) -> Decision:
    return _decision(
        "shift_traffic",
        segment=segment,
        from_processor="acq_a",
        to_processor="acq_b",
        percent=percent,
    )


def _retry(codes: list[str], max_attempts: int = 2, backup: str | None = "acq_b") -> Decision:
    return _decision(
        "enable_retry",
        segment=SEG,
        decline_codes=codes,
        max_attempts=max_attempts,
        backup_processor=backup,
    )


def test_shift_mixes_the_two_routes_success_rates() -> None:
    out = simulate(_shift(20), _snap(), CONTEXT)
    assert out.metric == "success_rate"
    assert out.before == pytest.approx(0.60)
    assert out.after == pytest.approx(0.8 * 0.60 + 0.2 * 0.90)
    assert out.improvement == pytest.approx(out.after - out.before)
    assert out.interval is not None
    lo, hi = out.interval
    assert 0 <= lo < out.after < hi <= 1
    assert out.model_extra is not None
    assert out.model_extra["fee_delta_bps"] == pytest.approx(0.2 * (45 - 30))


def test_shift_of_part_of_an_unpinned_segment_is_weighted_by_the_source_share() -> None:
    # the segment is BR on every processor: acq_a carries 1000 of its 1800 attempts
    snap = _snap(segment={"issuer_country": "BR"}, attempts=1800, approved=1320)
    out = simulate(_shift(50, {"issuer_country": "BR"}), snap, CONTEXT)
    assert out.after == pytest.approx(1320 / 1800 + (1000 / 1800) * 0.5 * (0.90 - 0.60))


def test_shift_to_a_worse_route_lowers_the_estimate() -> None:
    routes = {
        "acq_a": RouteStats("acq_a", 1000, 600, 0, 6000, 5400),
        "acq_b": RouteStats("acq_b", 1000, 400, 0, 6000, 5000),
    }
    assert simulate(_shift(30), _snap(routes=routes), CONTEXT).improvement < 0


def test_failover_moves_all_but_the_probe_traffic() -> None:
    failover = _decision(
        "failover_processor",
        segment=SEG,
        from_processor="acq_a",
        to_processor="acq_b",
        ttl_minutes=60,
    )
    out = simulate(failover, _snap(), CONTEXT)
    assert out.after == pytest.approx(0.05 * 0.60 + 0.95 * 0.90)
    assert out.after == simulate(_shift(95), _snap(), CONTEXT).after


def test_retry_recovers_technical_failures_at_the_backup_rate() -> None:
    snap = _snap(codes={"timeout": 300, "51": 50, "05": 40})
    out = simulate(_retry(["timeout", "51"]), snap, CONTEXT)
    # one retry of 300 timeouts at acq_b's 90%; 51 does not recover on another processor
    assert out.after == pytest.approx(0.60 + 300 * 0.90 / 1000)
    only_51 = simulate(_retry(["51"]), snap, CONTEXT)
    assert only_51.improvement == 0


def test_more_retries_recover_more_but_one_attempt_recovers_nothing() -> None:
    snap = _snap(codes={"timeout": 300})
    no_retry = simulate(_retry(["timeout"], max_attempts=1), snap, CONTEXT)
    one = simulate(_retry(["timeout"], max_attempts=2, backup=None), snap, CONTEXT)
    two = simulate(_retry(["timeout"], max_attempts=3, backup=None), snap, CONTEXT)
    assert no_retry.improvement == 0
    # on the same route, each retry succeeds at the segment's own 60%
    assert one.after == pytest.approx(0.60 + 0.3 * 0.6)
    assert two.after == pytest.approx(0.60 + 0.3 * (1 - 0.4**2))


def test_force_3ds_recovers_part_of_the_1a_declines() -> None:
    with_1a = simulate(
        _decision("force_3ds", segment=SEG, ttl_minutes=60), _snap(codes={"1A": 100}), CONTEXT
    )
    without = simulate(
        _decision("force_3ds", segment=SEG, ttl_minutes=60), _snap(codes={"91": 100}), CONTEXT
    )
    assert 0 < with_1a.improvement < 100 / 1000
    assert without.improvement == 0


def test_relax_3ds_recovers_part_of_the_failed_authentications() -> None:
    relax = _decision("relax_3ds", segment=SEG, ttl_minutes=60)
    out = simulate(relax, _snap(three_ds_failed=200), CONTEXT)
    assert 0 < out.improvement < 200 / 1000
    assert simulate(relax, _snap(three_ds_failed=0), CONTEXT).improvement == 0


def test_rollback_returns_the_segment_to_its_baseline() -> None:
    out = simulate(_decision("rollback_config", change=CHANGE), _snap(), CONTEXT)
    assert out.after == pytest.approx(0.90)
    assert out.interval is not None and out.interval[0] < 0.90 < out.interval[1]


def test_fraud_rule_remedies_release_fraud_declines_up_to_the_baseline() -> None:
    small = _snap(codes={"frm_decline": 50})
    shadow = _decision("adjust_fraud_rule", merchant_id="m_12", rule="velocity", mode="shadow")
    threshold = _decision(
        "adjust_fraud_rule", merchant_id="m_12", rule="velocity", mode="threshold", value=0.9
    )
    released = simulate(shadow, small, CONTEXT)
    assert released.after == pytest.approx(0.60 + 50 * 0.90 / 1000)
    assert 0 < simulate(threshold, small, CONTEXT).improvement < released.improvement
    rollback = simulate(_decision("rollback_config", change=FRAUD_CHANGE), small, CONTEXT)
    assert rollback.after == released.after
    # 400 released fraud declines would overshoot; the baseline (90%) is the ceiling
    assert simulate(shadow, _snap(codes={"frm_decline": 400}), CONTEXT).after == 0.90


@pytest.mark.parametrize(
    "decision",
    [
        _decision("no_action", reason="noise"),
        _decision("notify_oncall", severity="critical", summary="acq_a down"),
        _decision("disable_payment_method", segment=SEG, ttl_minutes=30),
    ],
    ids=lambda d: d.action,
)
def test_actions_without_a_success_rate_effect(decision: Decision) -> None:
    out = simulate(decision, _snap(), CONTEXT)
    assert out.before == out.after == pytest.approx(0.60)
    assert out.improvement == 0


def test_more_data_narrows_the_interval() -> None:
    def width(scale: int) -> float:
        routes = {
            "acq_a": RouteStats("acq_a", 100 * scale, 60 * scale, 0, 0, 0),
            "acq_b": RouteStats("acq_b", 100 * scale, 90 * scale, 0, 0, 0),
        }
        snap = _snap(attempts=100 * scale, approved=60 * scale, routes=routes)
        interval = simulate(_shift(50), snap, CONTEXT).interval
        assert interval is not None
        return interval[1] - interval[0]

    assert width(100) < width(10) < width(1)


def test_empty_segment_gives_a_finite_answer() -> None:
    empty = _snap(attempts=0, approved=0, codes={}, routes={}, baseline=(0, 0))
    for action, params in [
        ("shift_traffic", _shift(20).params),
        ("enable_retry", _retry(["timeout"]).params),
        ("force_3ds", {"segment": SEG, "ttl_minutes": 5}),
        ("rollback_config", {"change": CHANGE}),
    ]:
        out = simulate(_decision(action, **params), empty, CONTEXT)
        assert (out.before, out.after, out.improvement) == (0.0, 0.0, 0.0)
        assert out.interval is not None and 0 <= out.interval[0] <= out.interval[1] <= 1


def test_same_inputs_give_the_same_outcome_byte_for_byte() -> None:
    decision = _shift(20)
    first = simulate(decision, _snap(), CONTEXT).model_dump_json()
    assert simulate(decision, _snap(), CONTEXT).model_dump_json() == first


# --------------------------------------------------------------------------------------
# Executor seam and idempotency keys.


def test_simulated_executor_is_an_executor_that_simulates() -> None:
    executor: Executor = SimulatedExecutor()
    decision = _shift(20)
    key = idempotency_key(decision, "anomaly-1")
    assert executor.execute(decision, key, _snap(), CONTEXT) == simulate(
        decision, _snap(), CONTEXT
    )
    with pytest.raises(ValueError):
        executor.execute(decision, "", _snap(), CONTEXT)


def test_idempotency_key_depends_on_content_only() -> None:
    base = _retry(["timeout", "91"])
    key = idempotency_key(base, "fp-1")
    assert len(key) == 64 and int(key, 16) >= 0
    same = base.model_copy(
        update={
            "confidence": 0.61,
            "rationale": "other words",
            "reasoner": "model:x",
            "risk": "high",
        }
    )
    assert idempotency_key(same, "fp-1") == key
    assert idempotency_key(_retry(["91", "timeout", "91"]), "fp-1") == key  # codes are a set
    assert idempotency_key(base, "fp-2") != key
    assert idempotency_key(_retry(["timeout", "91"], max_attempts=1), "fp-1") != key
    assert idempotency_key(_shift(20), "fp-1") != idempotency_key(_shift(25), "fp-1")


def test_idempotency_key_is_stable_across_processes() -> None:
    code = (
        "from tools.contract import Decision; from tools.executor import idempotency_key; "
        "print(idempotency_key(Decision(action='shift_traffic', confidence=0.9, params={"
        "'segment': {'processor': 'acq_a', 'issuer_country': 'BR'}, 'from_processor': 'acq_a', "
        "'to_processor': 'acq_b', 'percent': 20}), 'fp-1'))"
    )
    root = Path(__file__).resolve().parents[1]
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert keys == {idempotency_key(_shift(20), "fp-1")}


def test_every_action_simulates_within_bounds() -> None:
    params: dict[str, dict[str, Any]] = {
        "no_action": {},
        "notify_oncall": {},
        "shift_traffic": _shift(20).params,
        "failover_processor": {
            "segment": SEG,
            "from_processor": "acq_a",
            "to_processor": "acq_b",
            "ttl_minutes": 60,
        },
        "enable_retry": _retry(["timeout"]).params,
        "force_3ds": {"segment": SEG, "ttl_minutes": 60},
        "relax_3ds": {"segment": SEG, "ttl_minutes": 60},
        "rollback_config": {"change": CHANGE},
        "adjust_fraud_rule": {"merchant_id": "m", "rule": "r", "mode": "disable"},
        "disable_payment_method": {"segment": SEG, "ttl_minutes": 60},
    }
    assert set(params) == set(ACTION_NAMES)
    snap = _snap(codes={"timeout": 300, "1A": 50, "frm_decline": 30}, three_ds_failed=40)
    for action, p in params.items():
        out = simulate(_decision(action, **p), snap, CONTEXT)
        assert 0 <= out.before <= 1 and 0 <= out.after <= 1, action
        assert out.interval is not None and out.interval[0] <= out.after <= out.interval[1]


def test_timestamps_in_params_do_not_matter_for_determinism() -> None:
    change = {**CHANGE, "ts": datetime(2026, 3, 1, 6, tzinfo=UTC).isoformat()}
    assert idempotency_key(_decision("rollback_config", change=change), "fp") == idempotency_key(
        _decision("rollback_config", change=CHANGE), "fp"
    )
