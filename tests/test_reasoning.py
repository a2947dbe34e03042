"""The deterministic reasoner on its own: classification and ranking from hand-built evidence.

No graph and no files: each test builds the Signature, Observation or SegmentSnapshot the
reasoner reads, so a failure names the rule that broke.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from agent.reasoning import PLAYBOOK_PRIOR, classify, rank_kinds, reason
from tools import actions
from tools.contract import (
    AnomalyRecord,
    CodeShift,
    RecentChange,
    ScenarioContext,
    Segment,
    TimeWindow,
)
from tools.guardrails import GuardConfig, GuardLimits, effective_limits
from tools.incidents import CONFIDENCE, Signature
from tools.learning import LearningContext, RemedyPrior
from tools.observe import Observation, RootCauseDetail, SegmentEvidence, WindowSummary
from tools.routes import RouteStats, SegmentSnapshot
from tools.signals.registry import measures_of

START = datetime(2026, 3, 1, 6, tzinfo=UTC)
BASELINE = TimeWindow(start=START - timedelta(hours=6), end=START)
CURRENT = TimeWindow(start=START, end=START + timedelta(hours=1))


def _sig(segment: Segment, metric: str = "success_rate", **features: object) -> Signature:
    """A signature with nothing moved but what `features` set (drop 20 pp by default)."""
    neutral = Signature(
        metric=metric,
        measures=measures_of(metric),
        dims=frozenset(segment),
        segment=segment,
        drop=0.2,
        error_rise=0.0,
        technical=0.0,
        fraud=0.0,
        authentication=0.0,
        insufficient_funds=0.0,
        three_ds_failure_rise=0.0,
        latency_ratio_p95=1.0,
        latency_ratio_p99=1.0,
        moved_codes=(),
    )
    return replace(neutral, **features)  # type: ignore[arg-type]


def _change(target: Segment, ago: timedelta = timedelta(minutes=5)) -> RecentChange:
    return RecentChange(ts=START - ago, kind="fraud_rule", target=target, version="r42")


# ---------------------------------------------------------------------------------------
# Each kind is recognised from its own evidence, at the confidence of its grade.

OUTAGE = {"processor": "acq_a"}
SLICE = {"processor": "acq_a", "card_network": "visa"}
COUNTRY = {"issuer_country": "BR"}
MERCHANT = {"merchant_id": "m_012"}

RECOGNISED: list[tuple[str, Signature, float]] = [
    (
        "processor_outage",
        _sig(OUTAGE, technical=1.0, error_rise=0.2, moved_codes=("timeout",)),
        CONFIDENCE.corroborated,
    ),
    (
        "processor_outage",
        _sig({**OUTAGE, "issuer_country": "BR"}, technical=1.0, error_rise=0.2),
        CONFIDENCE.uncorroborated,
    ),
    (
        "processor_degradation",
        _sig(SLICE, drop=0.1, technical=0.9, error_rise=0.02, moved_codes=("91", "96")),
        CONFIDENCE.corroborated,
    ),
    (
        "processor_degradation",
        _sig(OUTAGE, drop=0.1, technical=0.9, error_rise=0.02),
        CONFIDENCE.look_alike,
    ),
    ("issuer_outage", _sig(COUNTRY, technical=1.0, moved_codes=("91",)), CONFIDENCE.clean),
    ("network_incident", _sig({"card_network": "amex"}, technical=0.8), CONFIDENCE.clean),
    ("network_incident", _sig(MERCHANT, technical=0.8), CONFIDENCE.unplaced),
    ("three_ds_failure", _sig(COUNTRY, authentication=0.8), CONFIDENCE.clean),
    ("three_ds_failure", _sig(COUNTRY, three_ds_failure_rise=0.2), CONFIDENCE.clean),
    (
        "fraud_rule_misfire",
        _sig(MERCHANT, fraud=1.0, suspect_changes=(_change(MERCHANT),)),
        CONFIDENCE.corroborated,
    ),
    ("fraud_rule_misfire", _sig(MERCHANT, fraud=1.0), CONFIDENCE.uncorroborated),
    ("fraud_rule_misfire", _sig(COUNTRY, fraud=1.0), CONFIDENCE.out_of_place),
    (
        "latency_spike",
        _sig(OUTAGE, metric="latency_p95", drop=0.0, latency_ratio_p95=4.0, latency_ratio_p99=5.0),
        CONFIDENCE.clean,
    ),
    (
        "latency_spike",
        _sig(OUTAGE, drop=0.05, technical=0.6, error_rise=0.01, latency_ratio_p99=4.0),
        CONFIDENCE.look_alike,
    ),
    (
        "checkout_integration_break",
        _sig(MERCHANT, metric="volume", drop=0.0, suspect_changes=(_change(MERCHANT),)),
        CONFIDENCE.corroborated,
    ),
    (
        "checkout_integration_break",
        _sig({"payment_method": "wallet"}, metric="volume", drop=0.0),
        CONFIDENCE.uncorroborated,
    ),
    ("benign_shift", _sig(COUNTRY, insufficient_funds=0.8, technical=0.1), CONFIDENCE.clean),
]


@pytest.mark.parametrize(
    ("kind", "sig", "confidence"), RECOGNISED, ids=[f"{k}-{c}" for k, _, c in RECOGNISED]
)
def test_each_kind_is_recognised_from_its_evidence(
    kind: str, sig: Signature, confidence: float
) -> None:
    assert rank_kinds(sig) == [(kind, confidence)]


def test_a_volume_drop_is_never_read_by_where_it_sits() -> None:
    # Technical codes on a processor, but the root cause is missing attempts.
    sig = _sig(OUTAGE, metric="volume", technical=1.0, error_rise=0.2)
    assert [k for k, _ in rank_kinds(sig)] == ["checkout_integration_break"]


# ---------------------------------------------------------------------------------------
# How claims combine.


def test_mixed_evidence_lowers_the_leaders_confidence() -> None:
    # Fraud-screen and authentication declines both moved on one merchant.
    sig = _sig(MERCHANT, fraud=0.5, authentication=0.5)
    lead = CONFIDENCE.clean - CONFIDENCE.runner_up_weight * CONFIDENCE.uncorroborated
    mixed = round(lead + CONFIDENCE.mixed_offset, 4)
    # The runner-up is no likelier than the leader: mixed evidence lowers both.
    assert rank_kinds(sig) == [
        ("three_ds_failure", mixed),
        ("fraud_rule_misfire", min(mixed, CONFIDENCE.uncorroborated)),
    ]
    assert rank_kinds(sig)[0][1] < CONFIDENCE.clean


def test_location_alone_is_capped_when_the_drop_is_not_technical() -> None:
    # A drop in one country, no code family behind it: only where it sits is known.
    sig = _sig(COUNTRY, technical=0.1, moved_codes=("05",))
    assert rank_kinds(sig) == [("issuer_outage", CONFIDENCE.location_only)]


def test_what_failed_outranks_where_it_failed() -> None:
    # Insufficient funds moved in a country: not an issuer outage, whose claim is only
    # where the drop sits and the drop is not technical.
    assert [k for k, _ in rank_kinds(_sig(COUNTRY, insufficient_funds=0.8))] == ["benign_shift"]


def test_equal_confidence_prefers_what_failed_over_where() -> None:
    # Fraud declines with a rule change, on a slice of a processor that also threw
    # technical codes: both claims are corroborated, the code family leads.
    where = {"merchant_id": "m_012", "processor": "acq_a"}
    sig = _sig(where, fraud=0.5, technical=0.5, suspect_changes=(_change(MERCHANT),))
    ranked = rank_kinds(sig)
    assert [k for k, _ in ranked] == ["fraud_rule_misfire", "processor_degradation"]
    # Equally corroborated: the evidence is mixed, and both read as equally likely.
    assert ranked[1][1] == ranked[0][1] < CONFIDENCE.corroborated


# ---------------------------------------------------------------------------------------
# classify reads an Observation.


def _window(
    attempts: int,
    success_rate: float,
    error_rate: float = 0.005,
    p95: float = 900.0,
    p99: float = 1500.0,
    approved_p95: float = 800.0,
) -> WindowSummary:
    return WindowSummary(
        approved_latency_p95=approved_p95,
        attempts=attempts,
        success_rate=success_rate,
        error_rate=error_rate,
        technical_share=error_rate,
        soft_share=0.05,
        hard_share=0.02,
        challenge_rate=0.1,
        three_ds_failure_rate=0.01,
        latency_p50=350.0,
        latency_p95=p95,
        latency_p99=p99,
    )


def _shift(code: str, before: float, after: float) -> CodeShift:
    return CodeShift(
        code=code,
        baseline_share=before,
        current_share=after,
        baseline_count=round(before * 6000),
        current_count=round(after * 1000),
    )


def _observation(
    segment: Segment,
    baseline: WindowSummary,
    current: WindowSummary,
    shifts: list[CodeShift],
    metric: str = "success_rate",
) -> Observation:
    evidence = SegmentEvidence(
        segment=segment, baseline=baseline, current=current, code_shifts=shifts
    )
    anomaly = AnomalyRecord(
        segment=segment,
        metric=metric,
        baseline=baseline.success_rate,
        current=current.success_rate,
        p_value=1e-12,
        severity="critical",
    )
    cause = RootCauseDetail(
        segment=segment, metric=metric, effect=0.3, excess=300.0, explained_share=1.0
    )
    return Observation(
        baseline=BASELINE,
        current=CURRENT,
        dimensions=["merchant_id", "processor", "issuer_country", "card_network"],
        anomalous=True,
        anomalies=[anomaly],
        root_cause=[segment],
        root_causes=[cause],
        evidence=[evidence],
        overall=None,
        tests=100,
    )


def _quiet() -> Observation:
    return _observation({}, _window(6000, 0.9), _window(1000, 0.9), []).model_copy(
        update={"anomalous": False, "anomalies": [], "root_cause": [], "root_causes": []}
    )


def test_quiet_traffic_is_no_incident() -> None:
    (only,) = classify(_quiet(), ScenarioContext())
    assert (only.incident_kind, only.confidence) == ("none", CONFIDENCE.quiet)


def test_anomalies_without_a_root_cause_are_a_coin_toss() -> None:
    obs = _quiet().model_copy(update={"anomalous": True})
    (only,) = classify(obs, ScenarioContext())
    assert (only.incident_kind, only.confidence) == ("none", CONFIDENCE.unlocalized)


def test_an_outage_is_read_from_observed_timeouts() -> None:
    obs = _observation(
        OUTAGE,
        _window(6000, 0.92),
        _window(1000, 0.30, error_rate=0.62),
        [_shift("timeout", 0.002, 0.40), _shift("processing_error", 0.003, 0.23)],
    )
    top = classify(obs, ScenarioContext())[0]
    assert (top.incident_kind, top.confidence) == ("processor_outage", CONFIDENCE.corroborated)
    assert "root cause processor=acq_a (success_rate)" in top.evidence


def _fraud_observation() -> Observation:
    return _observation(
        MERCHANT, _window(6000, 0.9), _window(1000, 0.55), [_shift("frm_decline", 0.01, 0.36)]
    )


def test_a_fraud_rule_change_just_before_corroborates_a_misfire() -> None:
    changed = ScenarioContext(recent_changes=[_change(MERCHANT)])
    top = classify(_fraud_observation(), changed)[0]
    assert (top.incident_kind, top.confidence) == ("fraud_rule_misfire", CONFIDENCE.corroborated)
    assert "recent change: fraud_rule r42" in top.evidence


def test_a_change_long_before_or_elsewhere_corroborates_nothing() -> None:
    for change in (
        _change(MERCHANT, ago=timedelta(hours=4)),
        _change({"merchant_id": "m_999"}),
    ):
        top = classify(_fraud_observation(), ScenarioContext(recent_changes=[change]))[0]
        assert (top.incident_kind, top.confidence) == (
            "fraud_rule_misfire",
            CONFIDENCE.uncorroborated,
        )


def test_slow_successes_tell_a_latency_spike_from_an_outage() -> None:
    # Timeouts lead the drop either way; only approved attempts slowing down (x3 here)
    # says the route is slow rather than down.
    timeouts = [_shift("timeout", 0.002, 0.30)]
    down = _observation(OUTAGE, _window(6000, 0.92), _window(1000, 0.62, 0.30), timeouts)
    slow = _observation(
        OUTAGE,
        _window(6000, 0.92, p95=900.0, approved_p95=800.0),
        _window(1000, 0.62, 0.30, p95=9000.0, approved_p95=2400.0),
        timeouts,
    )
    assert classify(down, ScenarioContext())[0].incident_kind == "processor_outage"
    assert classify(slow, ScenarioContext())[0].incident_kind == "latency_spike"


def test_a_traffic_mix_shift_is_benign() -> None:
    obs = _observation(COUNTRY, _window(600, 0.8), _window(300, 0.8), [], metric="volume_surge")
    cause = obs.root_causes[0].model_copy(update={"mix_shift": True})
    top = classify(obs.model_copy(update={"root_causes": [cause]}), ScenarioContext())[0]
    assert top.incident_kind == "benign_shift"


def _with_alternative(obs: Observation, alternative: SegmentEvidence) -> Observation:
    cause = obs.root_causes[0].model_copy(update={"alternatives": [alternative.segment]})
    return obs.model_copy(update={"root_causes": [cause], "alternatives": [alternative]})


def test_an_alternative_of_another_kind_lowers_confidence_and_its_forbidden_remedies() -> None:
    # The data fits acq_a as a whole (an outage: move traffic) as well as one merchant on
    # it whose fraud declines jumped (a fraud rule: moving traffic is forbidden there).
    outage = _outage(0.4)
    fraud_slice = SegmentEvidence(
        segment={**OUTAGE, **MERCHANT},
        baseline=_window(600, 0.9),
        current=_window(100, 0.5),
        code_shifts=[_shift("frm_decline", 0.01, 0.40)],
    )
    mixed = _with_alternative(outage, fraud_slice)
    alone = classify(outage, ScenarioContext())
    hypotheses = classify(mixed, ScenarioContext())
    assert hypotheses[0].incident_kind == alone[0].incident_kind == "processor_outage"
    assert hypotheses[0].confidence < alone[0].confidence
    assert [(h.incident_kind, h.segment) for h in hypotheses[1:]] == [
        ("fraud_rule_misfire", fraud_slice.segment)
    ]
    snap = _snapshots(0.4, 0.95)
    found = reason(mixed, ScenarioContext(), lambda segment: snap, LearningContext(), GuardLimits())
    # Every remedy of the outage's playbook that a fraud rule forbids is left out: paging
    # on-call is right under both.
    assert [c.decision.action for c in found.candidates] == ["notify_oncall"]


def test_without_approvals_lost_only_risk_free_remedies_remain() -> None:
    # Timeouts rose on acq_a, but no signal counting approvals lost (success rate, volume)
    # is flagged there: moving traffic is not warranted yet, paging is.
    outage = _outage(0.4)
    quiet_rate = outage.evidence[0].model_copy(update={"signals": ["error_rate"]})
    obs = outage.model_copy(update={"evidence": [quiet_rate]})
    snap = _snapshots(0.4, 0.95)
    found = reason(obs, ScenarioContext(), lambda segment: snap, LearningContext(), GuardLimits())
    assert [c.decision.action for c in found.candidates] == ["notify_oncall"]
    flagged = outage.evidence[0].model_copy(update={"signals": ["success_rate", "error_rate"]})
    found = reason(
        outage.model_copy(update={"evidence": [flagged]}),
        ScenarioContext(),
        lambda segment: snap,
        LearningContext(),
        GuardLimits(),
    )
    assert found.candidates[0].decision.action == "shift_traffic"


# ---------------------------------------------------------------------------------------
# Ranking remedies: playbook order + simulated improvement + learning adjustment.


def _route(name: str, attempts: int, success_rate: float) -> RouteStats:
    return RouteStats(
        processor=name,
        attempts=attempts,
        approved=round(attempts * success_rate),
        errors=0,
        baseline_attempts=attempts * 6,
        baseline_approved=round(attempts * 6 * 0.92),
    )


def _snapshots(source_rate: float, target_rate: float) -> SegmentSnapshot:
    routes = {
        "acq_a": _route("acq_a", 1000, source_rate),
        "acq_b": _route("acq_b", 1000, target_rate),
        "acq_c": _route("acq_c", 1000, 0.85),
    }
    return SegmentSnapshot(
        segment=OUTAGE,
        attempts=1000,
        approved=round(1000 * source_rate),
        baseline_attempts=6000,
        baseline_approved=5520,
        decline_codes=MappingProxyType({"timeout": 400}),
        total_attempts=4000,
        routes=MappingProxyType(routes),
    )


def _outage(source_rate: float) -> Observation:
    return _observation(
        OUTAGE,
        _window(6000, 0.92),
        _window(1000, source_rate, error_rate=0.9 - source_rate),
        [_shift("timeout", 0.002, 0.9 - source_rate)],
    )


def _ranked(
    source_rate: float, target_rate: float, learning: LearningContext | None = None
) -> list[tuple[str, float, float]]:
    snap = _snapshots(source_rate, target_rate)
    found = reason(
        _outage(source_rate),
        ScenarioContext(),
        lambda segment: snap,
        learning or LearningContext(),
        GuardLimits(),
    )
    assert found.incident_kind == "processor_outage"
    return [(c.decision.action, c.estimated_improvement, c.score) for c in found.candidates]


def test_candidates_follow_the_playbook_when_the_simulator_agrees() -> None:
    ranked = _ranked(source_rate=0.4, target_rate=0.95)
    playbook = [spec.name for spec in actions.playbook("processor_outage")]
    assert [a for a, _, _ in ranked] == playbook
    for action, improvement, score in ranked:
        prior = PLAYBOOK_PRIOR[playbook.index(action)]
        assert score == round(prior + improvement, 6)


def test_a_much_larger_simulated_gain_outranks_the_playbook() -> None:
    # The processor is fully down and another is perfect: moving all traffic (failover)
    # gains so much more than moving half (shift) that it ranks first.
    ranked = _ranked(source_rate=0.0, target_rate=1.0)
    assert [a for a, _, _ in ranked][:2] == ["failover_processor", "shift_traffic"]


def test_past_outcomes_break_a_close_call() -> None:
    neutral = _ranked(source_rate=0.4, target_rate=0.95)
    assert [a for a, _, _ in neutral][:2] == ["shift_traffic", "failover_processor"]
    history = LearningContext(
        priors=(
            RemedyPrior("processor_outage", "failover_processor", 200, 200, 0.2),
            RemedyPrior("processor_outage", "shift_traffic", 200, 0, -0.2),
        )
    )
    learned = _ranked(source_rate=0.4, target_rate=0.95, learning=history)
    assert [a for a, _, _ in learned][:2] == ["failover_processor", "shift_traffic"]
    before = {action: score for action, _, score in neutral}
    for action, _, score in learned:
        adjustment = history.adjustment("processor_outage", action)
        assert score == round(before[action] + adjustment, 6)
        assert abs(adjustment) <= history.max_adjustment


# ---------------------------------------------------------------------------------------
# Candidates read the run's limits: tightening payops.toml changes a candidate, it never
# silently loses it to guard.


def _candidates(snap: SegmentSnapshot, limits: GuardLimits) -> dict[str, dict[str, object]]:
    found = reason(_outage(0.4), ScenarioContext(), lambda segment: snap, LearningContext(), limits)
    return {c.decision.action: c.decision.params for c in found.candidates}


def test_tightened_step_and_ttl_shrink_the_candidates() -> None:
    snap = _snapshots(source_rate=0.4, target_rate=0.95)
    default = _candidates(snap, GuardLimits())
    strict = _candidates(
        snap,
        effective_limits(
            GuardConfig.model_validate({"max_shift_step_pp": 20, "max_failover_ttl_minutes": 30}),
            {},
        ),
    )
    assert (default["shift_traffic"]["percent"], strict["shift_traffic"]["percent"]) == (50, 20)
    assert default["failover_processor"]["ttl_minutes"] == 60
    assert strict["failover_processor"]["ttl_minutes"] == 30


def test_a_stricter_route_evidence_floor_picks_a_route_that_meets_it() -> None:
    # acq_b is best but thin (40 current attempts); acq_c is healthy and well measured.
    snap = _snapshots(source_rate=0.4, target_rate=0.99)
    routes = {
        **snap.routes,
        "acq_b": _route("acq_b", 40, 0.99),
        "acq_c": _route("acq_c", 1000, 0.93),
    }
    snap = replace(snap, routes=MappingProxyType(routes))
    assert _candidates(snap, GuardLimits())["shift_traffic"]["to_processor"] == "acq_b"
    strict = effective_limits(GuardConfig(min_target_route_attempts=100), {})
    found = _candidates(snap, strict)
    assert found["shift_traffic"]["to_processor"] == "acq_c"
    assert found["failover_processor"]["to_processor"] == "acq_c"
    assert found["enable_retry"]["backup_processor"] == "acq_c"


def test_retries_configured_away_are_not_proposed() -> None:
    # One attempt in all retries nothing: the limit leaves no retry to propose.
    snap = _snapshots(source_rate=0.4, target_rate=0.95)
    strict = effective_limits(GuardConfig.model_validate({"max_retry_attempts": 1}), {})
    assert "enable_retry" in _candidates(snap, GuardLimits())
    assert "enable_retry" not in _candidates(snap, strict)


@pytest.mark.parametrize(
    "sig",
    [
        _sig(MERCHANT, fraud=0.5, authentication=0.5),
        _sig(SLICE, technical=0.9, error_rise=0.02, latency_ratio_p95=3.0, latency_ratio_p99=3.5),
        _sig(OUTAGE, technical=0.9, error_rise=0.15, latency_ratio_p95=2.5, latency_ratio_p99=4.0),
    ],
)
def test_no_runner_up_reads_as_more_likely_than_the_kind_chosen(sig: Signature) -> None:
    # Mixed evidence lowers the leader's confidence; a runner-up shown above it would say
    # the reasoner chose the less likely kind.
    confidences = [c for _, c in rank_kinds(sig)]
    assert confidences == sorted(confidences, reverse=True)


def test_the_demos_hypotheses_are_ranked_by_their_confidence() -> None:
    from pathlib import Path

    from tools.config import ObserveConfig
    from tools.data import load
    from tools.observe import observe

    demo = Path(__file__).resolve().parent.parent / "agent/demo/demo-processor-degradation-us"
    dataset = load(demo)
    assert dataset.scenario is not None
    hypotheses = classify(observe(dataset, ObserveConfig()), dataset.scenario.context)
    confidences = [h.confidence for h in hypotheses]
    assert len(confidences) > 1 and confidences == sorted(confidences, reverse=True)
