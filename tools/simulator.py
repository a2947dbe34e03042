"""What a remedy would do to its target segment's success rate, estimated from the data.

`simulate` is pure and cheap (a few microseconds): the reasoner calls it to rank candidate
remedies and the executor calls it to act in simulation. Each action has one estimator in
`_ESTIMATORS`; an estimator returns the success rate after the action and its variance,
and `simulate` turns that into an Outcome with a ~90% interval.

The interval is a normal approximation of the binomial uncertainty of the rates involved
(Agresti-Coull adjusted, so empty or perfect routes still get a finite width). It uses no
randomness, so the Outcome is the same for every seed; `seed` is part of the signature for
estimators that sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from tools.change_kinds import is_fraud_rule_change
from tools.contract import (
    AdjustFraudRuleParams,
    Decision,
    EnableRetryParams,
    FailoverProcessorParams,
    Outcome,
    RollbackConfigParams,
    ScenarioContext,
    ShiftTrafficParams,
)
from tools.decline_codes import AUTHENTICATION_REQUIRED, FRAUD_CODES, is_retryable_now
from tools.guardrails.limits import FAILOVER_PROBE_PCT
from tools.routes import RouteStats, SegmentSnapshot

METRIC = "success_rate"
Z90 = 1.6448536269514722  # two-sided 90% normal quantile

# Assumptions where the data cannot tell (secondary, order-of-magnitude figures):
# share of 1A-declined shoppers who complete a forced challenge,
STEP_UP_COMPLETION = 0.7
# share of failed-3DS attempts an issuer approves when sent with an exemption,
EXEMPTION_ACCEPTANCE = 0.5
# share of fraud-rule declines a re-thresholded (not shadowed or disabled) rule releases.
THRESHOLD_RELEASE = 0.5


@dataclass(frozen=True)
class _Estimate:
    after: float
    variance: float
    note: str
    fee_delta_bps: float | None = None


def _variance(approved: int, attempts: int) -> float:
    """Variance of a success-rate estimate, Agresti-Coull adjusted."""
    n = attempts + Z90**2
    p = (approved + Z90**2 / 2) / n
    return p * (1 - p) / n


def _seg_variance(snap: SegmentSnapshot) -> float:
    return _variance(snap.approved, snap.attempts)


def _unchanged(snap: SegmentSnapshot, note: str) -> _Estimate:
    return _Estimate(snap.success_rate, _seg_variance(snap), note)


def _approval_rate(snap: SegmentSnapshot) -> tuple[float, float]:
    """Rate at which the segment's issuers approve once the blocker is gone, and its variance.

    The baseline rate when there is one (the incident depresses the current rate).
    """
    if snap.baseline_attempts > 0:
        return snap.baseline_success_rate, _variance(snap.baseline_approved, snap.baseline_attempts)
    return snap.success_rate, _seg_variance(snap)


def _move(
    snap: SegmentSnapshot, ctx: ScenarioContext, src_name: str, dst_name: str, fraction: float
) -> _Estimate:
    """Move `fraction` of the source's traffic on the segment to the target."""
    src = snap.routes.get(src_name)
    dst = snap.routes.get(dst_name)
    if src is None or src.attempts == 0 or snap.attempts == 0:
        return _unchanged(snap, f"{src_name} carries no current traffic of the segment")
    if dst is None or (dst.attempts == 0 and dst.baseline_attempts == 0):
        return _unchanged(snap, f"no data on {dst_name} for the segment")
    dst_rate, dst_var = _route_rate(dst)
    # Weight of the moved traffic in the segment (1 when the segment is pinned to src).
    moved = min(1.0, src.attempts / snap.attempts) * fraction
    after = snap.success_rate + moved * (dst_rate - src.success_rate)
    variance = (1 - moved) ** 2 * _seg_variance(snap) + moved**2 * dst_var
    fees = ctx.processors
    fee_src = fees[src_name].fee_bps if src_name in fees else None
    fee_dst = fees[dst_name].fee_bps if dst_name in fees else None
    fee_delta = None if fee_src is None or fee_dst is None else moved * (fee_dst - fee_src)
    note = (
        f"{fraction:.0%} of {src_name} ({src.success_rate:.1%}) to {dst_name} "
        f"({dst_rate:.1%} on the segment)"
    )
    return _Estimate(after, variance, note, fee_delta)


def _route_rate(route: RouteStats) -> tuple[float, float]:
    # A route with no current attempts is judged on its baseline.
    if route.attempts > 0:
        return route.success_rate, _variance(route.approved, route.attempts)
    return route.baseline_success_rate, _variance(route.baseline_approved, route.baseline_attempts)


def _shift(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    assert isinstance(p, ShiftTrafficParams)
    return _move(snap, ctx, p.from_processor, p.to_processor, p.percent / 100)


def _failover(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    assert isinstance(p, FailoverProcessorParams)
    est = _move(snap, ctx, p.from_processor, p.to_processor, 1 - FAILOVER_PROBE_PCT / 100)
    return _Estimate(
        est.after, est.variance, f"{est.note}; {FAILOVER_PROBE_PCT:g}% probes", est.fee_delta_bps
    )


def _retry(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    assert isinstance(p, EnableRetryParams)
    retries = p.max_attempts - 1
    if retries <= 0 or snap.attempts == 0:
        return _unchanged(snap, "max_attempts 1 adds no retry")
    backup = snap.routes.get(p.backup_processor) if p.backup_processor else None
    if backup is not None and (backup.attempts + backup.baseline_attempts) > 0:
        rate, rate_var = _route_rate(backup)
        where = p.backup_processor
    else:
        rate, rate_var = snap.success_rate, _seg_variance(snap)
        where = "the same route"
    # Only technical failures recover on an immediate retry; 51 and the other issuer
    # declines fail again on any route, category-1 codes must not be retried at all.
    codes = sorted(set(p.decline_codes))
    recoverable = sum(snap.decline_codes.get(c, 0) for c in codes if is_retryable_now(c))
    share = recoverable / snap.attempts
    recovered = 1 - (1 - rate) ** retries
    slope = retries * (1 - rate) ** (retries - 1)
    after = snap.success_rate + share * recovered
    variance = _seg_variance(snap) + (share * slope) ** 2 * rate_var
    note = (
        f"{recoverable} technical failures ({', '.join(codes)}) retried up to {retries}x "
        f"on {where} at {rate:.1%}"
    )
    return _Estimate(after, variance, note)


def _recover(snap: SegmentSnapshot, blocked: float, note: str) -> _Estimate:
    """`blocked` attempts get through the blocker and are approved at the approval rate."""
    if snap.attempts == 0:
        return _unchanged(snap, "no current attempts on the segment")
    rate, rate_var = _approval_rate(snap)
    share = blocked / snap.attempts
    after = snap.success_rate + share * rate
    return _Estimate(after, _seg_variance(snap) + share**2 * rate_var, note)


def _force_3ds(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    n = snap.decline_codes.get(AUTHENTICATION_REQUIRED, 0)
    return _recover(
        snap,
        n * STEP_UP_COMPLETION,
        f"{n} 1A declines stepped up, {STEP_UP_COMPLETION:.0%} complete the challenge; "
        "challenge abandonment on other traffic not modelled",
    )


def _relax_3ds(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    n = snap.three_ds_failed
    return _recover(
        snap,
        n * EXEMPTION_ACCEPTANCE,
        f"{n} failed-3DS attempts sent with an exemption, {EXEMPTION_ACCEPTANCE:.0%} accepted",
    )


def _release_fraud_declines(snap: SegmentSnapshot, release: float, what: str) -> _Estimate:
    n = sum(snap.decline_codes.get(c, 0) for c in FRAUD_CODES)
    est = _recover(snap, n * release, f"{what}: {n} fraud-rule declines released")
    # Some fraud declines are real fraud: never above the baseline rate.
    if snap.baseline_attempts > 0:
        ceiling = max(snap.success_rate, snap.baseline_success_rate)
        return _Estimate(min(est.after, ceiling), est.variance, est.note)
    return est


def _adjust_fraud_rule(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    assert isinstance(p, AdjustFraudRuleParams)
    release = THRESHOLD_RELEASE if p.mode == "threshold" else 1.0
    return _release_fraud_declines(snap, release, f"rule {p.rule} to {p.mode}")


def _rollback(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    assert isinstance(p, RollbackConfigParams)
    if is_fraud_rule_change(p.change.kind):
        return _release_fraud_declines(snap, 1.0, f"rollback of {p.change.kind}")
    if snap.baseline_attempts == 0:
        return _unchanged(snap, "no baseline for the segment")
    # The change is taken as the cause: the segment returns to its baseline rate.
    after = max(snap.success_rate, snap.baseline_success_rate)
    variance = _variance(snap.baseline_approved, snap.baseline_attempts)
    return _Estimate(after, variance, f"rollback of {p.change.kind} restores the baseline rate")


def _disable(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    return _unchanged(snap, "stops failing attempts; no success-rate gain on the segment")


def _passive(p: BaseModel, snap: SegmentSnapshot, ctx: ScenarioContext) -> _Estimate:
    return _unchanged(snap, "changes nothing in the payment flow")


Estimator = Callable[[BaseModel, SegmentSnapshot, ScenarioContext], _Estimate]

_ESTIMATORS: dict[str, Estimator] = {
    "no_action": _passive,
    "notify_oncall": _passive,
    "shift_traffic": _shift,
    "failover_processor": _failover,
    "enable_retry": _retry,
    "force_3ds": _force_3ds,
    "relax_3ds": _relax_3ds,
    "rollback_config": _rollback,
    "adjust_fraud_rule": _adjust_fraud_rule,
    "disable_payment_method": _disable,
}


def _r(x: float) -> float:
    return round(x, 6)


def simulate(
    decision: Decision, snap: SegmentSnapshot, context: ScenarioContext, seed: int
) -> Outcome:
    """Estimate the target segment's success rate after `decision` (pure, deterministic).

    `snap` is the snapshot of `decision.target_segment()`. The Outcome carries `before`,
    `after`, `improvement`, a ~90% `interval` on `after`, `fee_delta_bps` (the change in
    the segment's average processor fee, when fees are known) and a `note`.
    """
    del seed  # the normal approximation needs no randomness (see module docstring)
    est = _ESTIMATORS[decision.action](decision.typed_params(), snap, context)
    before = _r(snap.success_rate)
    after = _r(min(1.0, max(0.0, est.after)))
    half = Z90 * math.sqrt(max(est.variance, 0.0))
    return Outcome(
        metric=METRIC,
        before=before,
        after=after,
        improvement=_r(after - before),
        interval=(_r(max(0.0, after - half)), _r(min(1.0, after + half))),
        fee_delta_bps=None if est.fee_delta_bps is None else _r(est.fee_delta_bps),
        note=est.note,
    )
