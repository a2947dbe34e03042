"""The arithmetic action estimators share: rates, their variances, moving and recovering.

An estimator (`ActionSpec.estimate`) returns the target segment's success rate after the
action and its variance; `tools.simulator.simulate` turns that into an Outcome with a ~90%
interval. Variances are the binomial uncertainty of the rates involved, Agresti-Coull
adjusted, so empty or perfect routes still get a finite width. Nothing here is random.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.actions.spec import Estimate, Route, Snapshot
from tools.decline_codes import FRAUD_CODES
from tools.fields import ProcessorInfo

Z90 = 1.6448536269514722  # two-sided 90% normal quantile


def variance(approved: int, attempts: int) -> float:
    """Variance of a success-rate estimate, Agresti-Coull adjusted."""
    n = attempts + Z90**2
    p = (approved + Z90**2 / 2) / n
    return p * (1 - p) / n


def segment_variance(snap: Snapshot) -> float:
    """Variance of the segment's current success rate."""
    return variance(snap.approved, snap.attempts)


def unchanged(snap: Snapshot, note: str) -> Estimate:
    """The segment stays at its current rate."""
    return Estimate(snap.success_rate, segment_variance(snap), note)


def route_rate(route: Route) -> tuple[float, float]:
    """A route's success rate and its variance; one with no current attempts is judged on
    its baseline."""
    if route.attempts > 0:
        return route.success_rate, variance(route.approved, route.attempts)
    return route.baseline_success_rate, variance(route.baseline_approved, route.baseline_attempts)


def approval_rate(snap: Snapshot) -> tuple[float, float]:
    """Rate at which the segment's issuers approve once the blocker is gone, and its variance.

    The baseline rate when there is one (the incident depresses the current rate).
    """
    if snap.baseline_attempts > 0:
        return snap.baseline_success_rate, variance(snap.baseline_approved, snap.baseline_attempts)
    return snap.success_rate, segment_variance(snap)


def move(
    snap: Snapshot,
    processors: Mapping[str, ProcessorInfo],
    src_name: str,
    dst_name: str,
    fraction: float,
) -> Estimate:
    """Move `fraction` of the source's traffic on the segment to the target."""
    src = snap.routes.get(src_name)
    dst = snap.routes.get(dst_name)
    if src is None or src.attempts == 0 or snap.attempts == 0:
        return unchanged(snap, f"{src_name} carries no current traffic of the segment")
    if dst is None or (dst.attempts == 0 and dst.baseline_attempts == 0):
        return unchanged(snap, f"no data on {dst_name} for the segment")
    dst_rate, dst_var = route_rate(dst)
    # Weight of the moved traffic in the segment (1 when the segment is pinned to src).
    moved = min(1.0, src.attempts / snap.attempts) * fraction
    after = snap.success_rate + moved * (dst_rate - src.success_rate)
    var = (1 - moved) ** 2 * segment_variance(snap) + moved**2 * dst_var
    fee_src = processors[src_name].fee_bps if src_name in processors else None
    fee_dst = processors[dst_name].fee_bps if dst_name in processors else None
    fee_delta = None if fee_src is None or fee_dst is None else moved * (fee_dst - fee_src)
    note = (
        f"{fraction:.0%} of {src_name} ({src.success_rate:.1%}) to {dst_name} "
        f"({dst_rate:.1%} on the segment)"
    )
    return Estimate(after, var, note, fee_delta)


def recover(snap: Snapshot, blocked: float, note: str) -> Estimate:
    """`blocked` attempts get through the blocker and are approved at the approval rate."""
    if snap.attempts == 0:
        return unchanged(snap, "no current attempts on the segment")
    rate, rate_var = approval_rate(snap)
    share = blocked / snap.attempts
    after = snap.success_rate + share * rate
    return Estimate(after, segment_variance(snap) + share**2 * rate_var, note)


def release_fraud_declines(snap: Snapshot, release: float, what: str) -> Estimate:
    """A share `release` of the segment's fraud-rule declines is let through."""
    n = sum(snap.decline_codes.get(c, 0) for c in FRAUD_CODES)
    est = recover(snap, n * release, f"{what}: {n} fraud-rule declines released")
    # Some fraud declines are real fraud: never above the baseline rate.
    if snap.baseline_attempts > 0:
        ceiling = max(snap.success_rate, snap.baseline_success_rate)
        return Estimate(min(est.after, ceiling), est.variance, est.note)
    return est


def passive(params: object, snap: Snapshot, processors: Mapping[str, ProcessorInfo]) -> Estimate:
    """The estimate of an action that changes nothing in the payment flow."""
    return unchanged(snap, "changes nothing in the payment flow")
