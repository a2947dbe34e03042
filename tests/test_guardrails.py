"""Guard rules: every hard limit fires when it should, stays quiet when it should not, and no
configuration or generated decision gets past them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tools import actions
from tools.actions.shift_traffic import MAX_STEP
from tools.config import load_config
from tools.contract import (
    ACTION_NAMES,
    RISK_ORDER,
    Decision,
    ProcessorInfo,
    RecentAction,
    RecentChange,
    ScenarioContext,
    Segment,
)
from tools.guardrails import (
    HARD_CEILINGS,
    HARD_FLOORS,
    RULES,
    GuardConfig,
    GuardInput,
    GuardLimits,
    GuardVerdict,
    effective_limits,
    evaluate,
)
from tools.routes import RouteStats, SegmentSnapshot

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
ANOMALY_START = datetime(2026, 3, 1, 6, 10, tzinfo=UTC)
SEG: Segment = {"processor": "acq_a", "issuer_country": "BR"}
CHANGE = RecentChange(
    ts=datetime(2026, 3, 1, 6, 0, tzinfo=UTC), kind="routing_config", version="v7"
)
FRAUD_CHANGE = RecentChange(
    ts=datetime(2026, 3, 1, 6, 0, tzinfo=UTC),
    kind="fraud_rule",
    target={"merchant_id": "m_12"},
    version="r42",
)
LIMITS = GuardLimits()


def _route(name: str, attempts: int, approved: int, errors: int = 0) -> RouteStats:
    return RouteStats(name, attempts, approved, errors, attempts * 5, int(approved * 5.5))


def _snap(
    segment: Segment | None = None,
    codes: dict[str, int] | None = None,
    three_ds_failed: int = 10,
    total_attempts: int = 10_000,
) -> SegmentSnapshot:
    routes = {
        "acq_a": _route("acq_a", 1000, 600, 300),  # in trouble on BR
        "acq_b": _route("acq_b", 800, 700),  # better on BR
        "acq_c": _route("acq_c", 500, 250),  # worse than acq_a
        "acq_d": _route("acq_d", 10, 10),  # perfect on too little evidence
    }
    return SegmentSnapshot(
        segment=dict(segment if segment is not None else SEG),
        attempts=1000,
        approved=600,
        baseline_attempts=6000,
        baseline_approved=5400,
        decline_codes=MappingProxyType(
            codes if codes is not None else {"timeout": 300, "91": 50, "51": 40, "1A": 10}
        ),
        three_ds_failed=three_ds_failed,
        total_attempts=total_attempts,
        routes=MappingProxyType(routes),
    )


def _context(**kw: Any) -> ScenarioContext:
    base: dict[str, Any] = {
        "processors": {
            "acq_a": ProcessorInfo(fee_bps=30, healthy=False),
            "acq_b": ProcessorInfo(fee_bps=45),
            "acq_c": ProcessorInfo(fee_bps=20),
            "acq_d": ProcessorInfo(fee_bps=25),
        },
        "recent_changes": [CHANGE, FRAUD_CHANGE],
    }
    base.update(kw)
    return ScenarioContext(**base)


GOOD_PARAMS: dict[str, dict[str, Any]] = {
    "no_action": {"reason": "within noise"},
    "notify_oncall": {"severity": "warning", "summary": "acq_a BR down"},
    "shift_traffic": {
        "segment": SEG,
        "from_processor": "acq_a",
        "to_processor": "acq_b",
        "percent": 20,
    },
    "failover_processor": {
        "segment": SEG,
        "from_processor": "acq_a",
        "to_processor": "acq_b",
        "ttl_minutes": 60,
    },
    "enable_retry": {
        "segment": SEG,
        "decline_codes": ["timeout", "91"],
        "max_attempts": 2,
        "backup_processor": "acq_b",
    },
    "force_3ds": {"segment": SEG, "ttl_minutes": 60},
    "relax_3ds": {"segment": SEG, "ttl_minutes": 60},
    "rollback_config": {"change": CHANGE.model_dump(mode="json")},
    "adjust_fraud_rule": {"merchant_id": "m_12", "rule": "velocity", "mode": "shadow"},
    "disable_payment_method": {"segment": SEG, "ttl_minutes": 60},
}
GOOD_STATUS = {
    "no_action": "approved",
    "notify_oncall": "approved",
    "shift_traffic": "approved",
    "failover_processor": "needs_approval",
    "enable_retry": "approved",
    "force_3ds": "approved",
    "relax_3ds": "needs_approval",
    "rollback_config": "approved",
    "adjust_fraud_rule": "needs_approval",
    "disable_payment_method": "needs_approval",
}


def _inp(
    action: str,
    *,
    params: dict[str, Any] | None = None,
    confidence: float = 0.9,
    snap: SegmentSnapshot | None = None,
    context: ScenarioContext | None = None,
    evidence: int = 1000,
    anomaly_start: datetime | None = ANOMALY_START,
    root_cause: tuple[Segment, ...] = (SEG,),
    **overrides: Any,
) -> GuardInput:
    merged = {**GOOD_PARAMS[action], **(params or {}), **overrides}
    decision = Decision(action=action, params=merged, confidence=confidence)
    return GuardInput(
        decision=decision,
        snapshot=snap if snap is not None else _snap(decision.target_segment() or SEG),
        evidence_attempts=evidence,
        context=context if context is not None else _context(),
        now=NOW,
        anomaly_start=anomaly_start,
        root_cause=root_cause,
    )


def _fired(verdict: GuardVerdict) -> set[str]:
    return {v.rule for v in verdict.violations}


def _ago(minutes: float, action: str, **params: Any) -> RecentAction:
    return RecentAction(
        action=action,
        params={**GOOD_PARAMS[action], **params},
        ts=NOW - timedelta(minutes=minutes),
    )


# --------------------------------------------------------------------------------------
# The good decision of every action passes; evaluate reports everything at once.


@pytest.mark.parametrize("action", ACTION_NAMES)
def test_a_sound_decision_of_every_action_passes_with_its_risk(action: str) -> None:
    verdict = evaluate(_inp(action), LIMITS)
    assert verdict.violations == []
    assert verdict.status == GOOD_STATUS[action]
    assert (verdict.status == "needs_approval") == bool(verdict.reasons_for_approval)


def test_no_action_is_approved_even_when_everything_else_would_fire() -> None:
    verdict = evaluate(
        _inp("no_action", confidence=0.1, evidence=0),
        LIMITS.model_copy(update={"kill_switch": True}),
    )
    assert verdict == GuardVerdict(status="approved", risk="none")


def test_every_violation_is_reported_at_once() -> None:
    inp = _inp(
        "shift_traffic",
        confidence=0.3,
        evidence=5,
        percent=97,
        to_processor="acq_c",
        context=_context(recent_actions=[_ago(5, "shift_traffic")]),
    )
    verdict = evaluate(inp, LIMITS)
    assert verdict.status == "blocked"
    assert _fired(verdict) == {
        "min_confidence",
        "min_evidence",
        "shift_step_limit",
        "shift_keep_exploration",
        "target_not_worse",
        "segment_cooldown",
    }
    assert all(v.detail for v in verdict.violations)


def test_rule_names_are_stable_snake_case() -> None:
    names = [rule.__name__ for rule in RULES]
    assert len(names) == len(set(names))
    assert all(n.islower() and " " not in n for n in names)


# --------------------------------------------------------------------------------------
# Each rule, firing and not firing. Each case: (rule, firing input, quiet input).

CASES: list[tuple[str, Any, Any]] = [
    (
        "min_confidence",
        lambda: _inp("shift_traffic", confidence=0.59),
        lambda: _inp("shift_traffic", confidence=0.6),
    ),
    (
        "min_evidence",
        lambda: _inp("failover_processor", evidence=199),
        lambda: _inp("failover_processor", evidence=200),
    ),
    (
        "min_evidence",
        lambda: _inp("shift_traffic", evidence=99),
        lambda: _inp("shift_traffic", evidence=100),
    ),
    (
        "shift_step_limit",
        lambda: _inp("shift_traffic", percent=50.5),
        lambda: _inp("shift_traffic", percent=50),
    ),
    (
        "shift_keep_exploration",
        lambda: _inp("shift_traffic", percent=96),
        lambda: _inp("shift_traffic", percent=95),
    ),
    (
        "ttl_limit",
        lambda: _inp("failover_processor", ttl_minutes=241),
        lambda: _inp("failover_processor", ttl_minutes=240),
    ),
    (
        "ttl_limit",
        lambda: _inp("force_3ds", ttl_minutes=241),
        lambda: _inp("force_3ds", ttl_minutes=240),
    ),
    (
        "ttl_limit",
        lambda: _inp("disable_payment_method", ttl_minutes=121),
        lambda: _inp("disable_payment_method", ttl_minutes=120),
    ),
    (
        "retry_max_attempts",
        lambda: _inp("enable_retry", max_attempts=3),
        lambda: _inp("enable_retry", max_attempts=2),
    ),
    (
        "distinct_processors",
        lambda: _inp("shift_traffic", to_processor="acq_a"),
        lambda: _inp("shift_traffic"),
    ),
    (
        "processor_serves_segment",
        lambda: _inp("shift_traffic", to_processor="acq_zz"),
        lambda: _inp("shift_traffic", to_processor="acq_b"),
    ),
    (
        "processor_serves_segment",  # the segment is pinned to another processor than the source
        lambda: _inp("shift_traffic", from_processor="acq_c"),
        lambda: _inp(
            "shift_traffic",
            segment={"issuer_country": "BR"},
            from_processor="acq_c",
            to_processor="acq_b",
        ),
    ),
    (
        "target_healthy",
        lambda: _inp(
            "failover_processor",
            context=_context(processors={"acq_b": ProcessorInfo(healthy=False)}),
        ),
        lambda: _inp(
            "failover_processor",
            context=_context(processors={"acq_b": ProcessorInfo(healthy=True)}),
        ),
    ),
    (
        "target_route_evidence",
        lambda: _inp("shift_traffic", to_processor="acq_d"),
        lambda: _inp("shift_traffic"),
    ),
    (
        "target_not_worse",
        lambda: _inp("shift_traffic", to_processor="acq_c"),
        lambda: _inp("shift_traffic"),
    ),
    (
        "target_not_worse",
        lambda: _inp("failover_processor", to_processor="acq_c"),
        lambda: _inp("failover_processor"),
    ),
    (
        "last_healthy_route",
        lambda: _inp(
            "failover_processor",
            context=_context(
                processors={
                    n: ProcessorInfo(healthy=n == "acq_a")
                    for n in ("acq_a", "acq_b", "acq_c", "acq_d")
                }
            ),
        ),
        lambda: _inp(
            "failover_processor",
            context=_context(
                processors={
                    n: ProcessorInfo(healthy=n in ("acq_a", "acq_b"))
                    for n in ("acq_a", "acq_b", "acq_c", "acq_d")
                }
            ),
        ),
    ),
    (
        "retry_never_codes",
        lambda: _inp("enable_retry", decline_codes=["91", "05", "04"]),
        lambda: _inp("enable_retry"),
    ),
    (
        "retry_never_codes",
        lambda: _inp("enable_retry", decline_codes=["MAC21"]),
        lambda: _inp("enable_retry"),
    ),
    (
        "retry_never_codes",
        lambda: _inp("enable_retry", decline_codes=["N7"]),
        lambda: _inp("enable_retry"),
    ),
    (
        "retry_no_cross_processor_51",
        lambda: _inp("enable_retry", decline_codes=["timeout", "51"]),
        lambda: _inp("enable_retry", decline_codes=["timeout", "51"], backup_processor=None),
    ),
    (
        "retry_after_failed_3ds",
        lambda: _inp("enable_retry", decline_codes=["timeout", "1A"]),
        lambda: _inp("enable_retry", decline_codes=["timeout"]),
    ),
    (
        "retry_after_failed_3ds",  # most failures on the segment are failed 3DS
        lambda: _inp("enable_retry", snap=_snap(three_ds_failed=201)),
        lambda: _inp("enable_retry", snap=_snap(three_ds_failed=200)),
    ),
    (
        "relax_3ds_sca",
        lambda: _inp("relax_3ds", segment={"issuer_country": "FR"}),
        lambda: _inp("relax_3ds", segment={"issuer_country": "BR"}),
    ),
    (
        "relax_3ds_sca",
        lambda: _inp("relax_3ds", segment={"processor": "acq_a"}),
        lambda: _inp("relax_3ds"),
    ),
    (
        "relax_3ds_sca",
        lambda: _inp("relax_3ds", segment={"issuer_country": "GB"}),
        lambda: _inp("relax_3ds"),
    ),
    (
        "force_3ds_needs_1a",
        lambda: _inp("force_3ds", snap=_snap(codes={"timeout": 300})),
        lambda: _inp("force_3ds", snap=_snap(codes={"timeout": 300, "1A": 1})),
    ),
    (
        "rollback_known_change",
        lambda: _inp("rollback_config", change={**CHANGE.model_dump(mode="json"), "version": "v6"}),
        lambda: _inp("rollback_config"),
    ),
    (
        "rollback_precedes_anomaly",
        lambda: _inp("rollback_config", anomaly_start=CHANGE.ts),
        lambda: _inp("rollback_config", anomaly_start=CHANGE.ts + timedelta(minutes=1)),
    ),
    (
        "fraud_rule_shadow_first",
        lambda: _inp("adjust_fraud_rule", mode="disable"),
        lambda: _inp(
            "adjust_fraud_rule",
            mode="disable",
            context=_context(recent_actions=[_ago(120, "adjust_fraud_rule")]),
        ),
    ),
    (
        "kill_switch",
        lambda: _inp("shift_traffic", context=_context()),
        lambda: _inp("notify_oncall"),
    ),
    (
        "segment_cooldown",
        lambda: _inp(
            "shift_traffic",
            context=_context(
                recent_actions=[_ago(14, "enable_retry", segment={"issuer_country": "BR"})]
            ),
        ),
        lambda: _inp(
            "shift_traffic",
            context=_context(
                recent_actions=[_ago(16, "enable_retry", segment={"issuer_country": "BR"})]
            ),
        ),
    ),
    (
        "segment_cooldown",  # a disjoint segment is not in cooldown
        lambda: _inp("shift_traffic", context=_context(recent_actions=[_ago(5, "shift_traffic")])),
        lambda: _inp(
            "shift_traffic",
            context=_context(
                recent_actions=[
                    _ago(5, "shift_traffic", segment={"processor": "acq_a", "issuer_country": "MX"})
                ]
            ),
        ),
    ),
    (
        "notify_dedup",
        lambda: _inp("notify_oncall", context=_context(recent_actions=[_ago(29, "notify_oncall")])),
        lambda: _inp("notify_oncall", context=_context(recent_actions=[_ago(31, "notify_oncall")])),
    ),
    (
        "notify_dedup",  # an escalation in severity goes out
        lambda: _inp(
            "notify_oncall",
            context=_context(recent_actions=[_ago(5, "notify_oncall", severity="critical")]),
        ),
        lambda: _inp(
            "notify_oncall",
            severity="critical",
            context=_context(recent_actions=[_ago(5, "notify_oncall", severity="warning")]),
        ),
    ),
    (
        "hourly_action_rate",
        lambda: _inp(
            "shift_traffic",
            context=_context(
                recent_actions=[
                    _ago(20 + i, "force_3ds", segment={"issuer_country": f"C{i}"}) for i in range(6)
                ]
            ),
        ),
        lambda: _inp(
            "shift_traffic",
            context=_context(
                recent_actions=[
                    _ago(20 + i, "force_3ds", segment={"issuer_country": f"C{i}"}) for i in range(5)
                ]
                + [_ago(61, "force_3ds", segment={"issuer_country": "XX"})]
                + [_ago(30, "notify_oncall")] * 3
            ),
        ),
    ),
]


@pytest.mark.parametrize(
    ("rule", "firing", "quiet"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_fires_and_stays_quiet(rule: str, firing: Any, quiet: Any) -> None:
    limits = LIMITS.model_copy(update={"kill_switch": rule == "kill_switch"})
    fired = evaluate(firing(), limits)
    assert rule in _fired(fired), fired
    assert fired.status == "blocked"
    calm = evaluate(quiet(), limits)
    assert rule not in _fired(calm), calm


def test_kill_switch_lets_notifications_through() -> None:
    limits = LIMITS.model_copy(update={"kill_switch": True})
    for action in ACTION_NAMES:
        verdict = evaluate(_inp(action), limits)
        assert ("kill_switch" in _fired(verdict)) == (action not in ("no_action", "notify_oncall"))


# --------------------------------------------------------------------------------------
# Escalations to a human.


def test_affected_volume_above_the_cap_needs_a_human() -> None:
    # enable_retry touches the listed failures: 350 of 1,000 total attempts = 35%
    verdict = evaluate(_inp("enable_retry", snap=_snap(total_attempts=1000)), LIMITS)
    assert verdict.status == "needs_approval"
    assert verdict.risk == "high"
    assert any("affected_volume_cap" in r and "35%" in r for r in verdict.reasons_for_approval)
    # 350 of 1,200 = 29%: under the cap
    assert (
        evaluate(_inp("enable_retry", snap=_snap(total_attempts=1200)), LIMITS).status == "approved"
    )


def test_shift_volume_counts_only_the_moved_share() -> None:
    # 20% of acq_a's 1,000 attempts = 200 of 1,000 total: 20%, under the cap
    assert (
        evaluate(_inp("shift_traffic", snap=_snap(total_attempts=1000)), LIMITS).status
        == "approved"
    )
    # 40% = 400 of 1,000: above it
    verdict = evaluate(_inp("shift_traffic", percent=40, snap=_snap(total_attempts=1000)), LIMITS)
    assert verdict.status == "needs_approval"


def test_fraud_rule_rollback_needs_a_human() -> None:
    verdict = evaluate(_inp("rollback_config", change=FRAUD_CHANGE.model_dump(mode="json")), LIMITS)
    assert verdict.status == "needs_approval"
    assert verdict.risk == "high"
    assert any(
        r.startswith("fraud_rule_rollback_needs_human") for r in verdict.reasons_for_approval
    )


def test_rollback_with_unknown_anomaly_start_needs_a_human() -> None:
    verdict = evaluate(_inp("rollback_config", anomaly_start=None), LIMITS)
    assert verdict.status == "needs_approval"


def test_high_risk_raised_by_the_reasoner_is_not_auto_approved() -> None:
    inp = _inp("shift_traffic")
    raised = replace(inp, decision=inp.decision.model_copy(update={"risk": "high"}))
    verdict = evaluate(raised, LIMITS)
    assert (verdict.status, verdict.risk) == ("needs_approval", "high")


def test_a_violation_blocks_even_a_decision_that_needs_approval() -> None:
    verdict = evaluate(_inp("relax_3ds", segment={"issuer_country": "DE"}), LIMITS)
    assert verdict.status == "blocked"


# --------------------------------------------------------------------------------------
# Configuration can tighten limits, never loosen them.


def test_config_tightens_limits() -> None:
    limits = effective_limits(
        GuardConfig(max_shift_step_pp=20, min_confidence=0.8, min_evidence={"shift_traffic": 500}),
        {},
    )
    assert (limits.of(MAX_STEP), limits.min_confidence) == (20, 0.8)
    assert limits.evidence_required("shift_traffic") == 500
    assert "shift_step_limit" in _fired(evaluate(_inp("shift_traffic", percent=25), limits))
    assert "min_confidence" in _fired(evaluate(_inp("shift_traffic", confidence=0.7), limits))
    assert "min_evidence" in _fired(evaluate(_inp("shift_traffic", evidence=400), limits))


def test_config_cannot_loosen_limits(caplog: pytest.LogCaptureFixture) -> None:
    loose = GuardConfig(
        max_shift_step_pp=100,
        min_confidence=0.1,
        min_source_exploration_pct=0,
        cooldown_minutes=0,
        max_retry_attempts=5,
        max_affected_share=1.0,
        min_evidence={"failover_processor": 1},
    )
    limits = effective_limits(loose, {})
    assert limits == GuardLimits()
    assert "would loosen a hard limit" in caplog.text
    assert "shift_step_limit" in _fired(evaluate(_inp("shift_traffic", percent=80), limits))
    assert "min_confidence" in _fired(evaluate(_inp("shift_traffic", confidence=0.5), limits))


def test_limits_cannot_be_built_looser_than_hard() -> None:
    for name, ceiling in HARD_CEILINGS.items():
        with pytest.raises(ValidationError):
            GuardLimits(**{name: ceiling * 2})
    for name, floor in HARD_FLOORS.items():
        with pytest.raises(ValidationError):
            GuardLimits(**{name: floor / 2})
    for name, limit in actions.limits().items():
        looser = limit.hard * 2 if limit.bound == "ceiling" else limit.hard / 2
        with pytest.raises(ValidationError, match=name):
            GuardLimits(action_limits={name: looser})
    with pytest.raises(ValidationError):
        GuardLimits(min_evidence={"shift_traffic": 10})
    with pytest.raises(ValidationError, match="not a limit of any registered action"):
        GuardLimits(action_limits={"max_shfit_step_pp": 10})


def test_payops_toml_guard_section_is_clamped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYOPS_KILL_SWITCH", raising=False)
    path = tmp_path / "payops.toml"
    path.write_text("[guard]\nmax_shift_step_pp = 80\ncooldown_minutes = 30\nkill_switch = true\n")
    limits = effective_limits(load_config(path).guard)
    assert (limits.of(MAX_STEP), limits.cooldown_minutes, limits.kill_switch) == (50, 30, True)


@pytest.mark.parametrize(
    ("value", "engaged"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_kill_switch_from_environment(value: str, engaged: bool) -> None:
    assert effective_limits(GuardConfig(), {"PAYOPS_KILL_SWITCH": value}).kill_switch is engaged


# --------------------------------------------------------------------------------------
# Property: whatever the reasoner proposes, the invariants hold.

PROCESSORS = ["acq_a", "acq_b", "acq_c", "acq_x"]
# retryable codes first: hypothesis favours the head of a list
CODES = ["timeout", "51", "91", "96", "05", "61", "04", "1A", "MAC21", "N7"]


@st.composite
def _segments(draw: st.DrawFn) -> Segment:
    seg: Segment = {}
    if draw(st.booleans()):
        seg["processor"] = draw(st.sampled_from(PROCESSORS))
    if draw(st.booleans()):
        seg["issuer_country"] = draw(st.sampled_from(["BR", "FR", "US", "GB"]))
    return seg


@st.composite
def _moves(draw: st.DrawFn) -> dict[str, Any]:
    """Segment, source and target of a traffic move; mostly consistent, sometimes not."""
    order = draw(st.permutations(PROCESSORS))
    src, dst = order[0], order[1] if draw(st.integers(0, 4)) > 0 else order[0]
    segment = draw(_segments())
    if "processor" in segment and draw(st.integers(0, 4)) > 0:
        segment["processor"] = src
    return {"segment": segment, "from_processor": src, "to_processor": dst}


@st.composite
def _decisions(draw: st.DrawFn, names: Sequence[str] = ACTION_NAMES) -> Decision:
    action = draw(st.sampled_from(names))
    ttl = st.integers(1, 1000)
    proc = st.sampled_from(PROCESSORS)
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "no_action": lambda: {},
        "notify_oncall": lambda: {
            "severity": draw(st.sampled_from(["info", "warning", "critical"]))
        },
        "shift_traffic": lambda: {
            **draw(_moves()),
            "percent": draw(st.floats(0.01, 100) | st.floats(0.01, 50)),
        },
        "failover_processor": lambda: {
            **draw(_moves()),
            "ttl_minutes": draw(ttl),
        },
        "enable_retry": lambda: {
            "segment": draw(_segments()),
            "decline_codes": draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=3)),
            "max_attempts": draw(st.integers(1, 3)),
            "backup_processor": draw(st.none() | proc),
        },
        "force_3ds": lambda: {"segment": draw(_segments()), "ttl_minutes": draw(ttl)},
        "relax_3ds": lambda: {"segment": draw(_segments()), "ttl_minutes": draw(ttl)},
        "rollback_config": lambda: {
            "change": draw(st.sampled_from([CHANGE, FRAUD_CHANGE])).model_dump(mode="json")
        },
        "adjust_fraud_rule": lambda: {
            "merchant_id": "m_12",
            "rule": "velocity",
            "mode": draw(st.sampled_from(["shadow", "disable", "threshold"])),
        },
        "disable_payment_method": lambda: {"segment": draw(_segments()), "ttl_minutes": draw(ttl)},
    }
    params = builders[action]()
    return Decision(
        action=action,
        params=params,
        # half of them above the floor, so that the rules behind it are exercised too
        confidence=draw(st.floats(0, 1) | st.floats(0.6, 1)),
        risk=draw(st.sampled_from(["none", "low", "medium", "high"])),
    )


@st.composite
def _worlds(draw: st.DrawFn) -> tuple[SegmentSnapshot, ScenarioContext]:
    routes: dict[str, RouteStats] = {}
    for name in PROCESSORS:
        if draw(st.integers(0, 9)) == 0:
            continue  # a processor that does not serve the segment
        attempts = draw(st.integers(0, 2000))
        routes[name] = RouteStats(
            name, attempts, draw(st.integers(0, attempts)), 0, draw(st.integers(0, 3)), 0
        )
    attempts = sum(r.attempts for r in routes.values())
    approved = sum(r.approved for r in routes.values())
    snap = SegmentSnapshot(
        segment={},
        attempts=attempts,
        approved=approved,
        baseline_attempts=attempts,
        baseline_approved=approved,
        decline_codes=MappingProxyType(
            {c: draw(st.integers(0, 50)) for c in draw(st.lists(st.sampled_from(CODES)))}
        ),
        three_ds_failed=draw(
            st.integers(0, (attempts - approved) // 3) | st.integers(0, attempts - approved)
        ),
        total_attempts=attempts * draw(st.sampled_from([1, 4, 10])) + draw(st.integers(0, 20_000)),
        routes=MappingProxyType(routes),
    )
    context = ScenarioContext(
        processors={
            p: ProcessorInfo(healthy=draw(st.integers(0, 3)) > 0)
            for p in PROCESSORS
            if draw(st.booleans())
        },
        recent_changes=[CHANGE, FRAUD_CHANGE],
    )
    return snap, context


_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(decision=_decisions(), world=_worlds(), evidence=st.integers(0, 5000))
def test_no_generated_decision_breaks_the_invariants(
    decision: Decision, world: tuple[SegmentSnapshot, ScenarioContext], evidence: int
) -> None:
    _check_invariants(decision, world, evidence)


@_PROPERTY
@given(
    decision=_decisions(("shift_traffic", "enable_retry")),
    world=_worlds(),
    evidence=st.integers(100, 5000),
)
def test_no_generated_shift_or_retry_breaks_the_invariants(
    decision: Decision, world: tuple[SegmentSnapshot, ScenarioContext], evidence: int
) -> None:
    # The same invariants, with the generator focused on the actions that move or retry
    # traffic, so that approved ones are common enough to be checked.
    _check_invariants(decision, world, evidence)


def _check_invariants(
    decision: Decision, world: tuple[SegmentSnapshot, ScenarioContext], evidence: int
) -> None:
    snap, context = world
    inp = GuardInput(decision, snap, evidence, context, NOW, ANOMALY_START, root_cause=(SEG,))
    verdict = evaluate(inp, LIMITS)

    assert RISK_ORDER[verdict.risk] >= RISK_ORDER[decision.risk]
    if verdict.status == "blocked":
        assert verdict.violations
    if decision.action == "no_action":
        assert verdict.status == "approved"
        return
    if decision.confidence < 0.6:
        assert verdict.status == "blocked"
    if verdict.risk == "high":
        assert verdict.status != "approved"
    if verdict.status != "approved":
        return
    p = decision.params
    if decision.action == "shift_traffic":
        assert p["percent"] <= LIMITS.of(MAX_STEP)
        assert p["to_processor"] != p["from_processor"]
        if context.processors:  # fail closed: a target the context does not list is unknown
            listed = context.processors.get(p["to_processor"])
            assert listed is not None and listed.healthy
        src, dst = snap.routes[p["from_processor"]], snap.routes[p["to_processor"]]
        assert dst.attempts >= LIMITS.min_target_route_attempts
        assert dst.success_rate >= src.success_rate
    if decision.action == "enable_retry":
        assert p["max_attempts"] <= 2
        cross = p.get("backup_processor") not in (None, p["segment"].get("processor"))
        assert not (cross and "51" in p["decline_codes"])
