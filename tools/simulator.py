"""What a remedy would do to its target segment's success rate, estimated from the data.

`simulate` is pure and cheap (a few microseconds): the reasoner calls it to rank candidate
remedies and the executor calls it to act in simulation. Each action's estimator is part
of its catalogue module (`ActionSpec.estimate`, tools/actions/); it returns the success
rate after the action and its variance, and `simulate` turns that into an Outcome with a
~90% interval. The interval is a normal approximation of the binomial uncertainty of the
rates involved (tools/actions/estimates.py). Nothing is random: the same decision on the
same data gives the same Outcome.
"""

from __future__ import annotations

import math

from tools import actions
from tools.actions.estimates import Z90
from tools.contract import Decision, Outcome, ScenarioContext
from tools.routes import SegmentSnapshot

METRIC = "success_rate"


def _r(x: float) -> float:
    return round(x, 6)


def simulate(decision: Decision, snap: SegmentSnapshot, context: ScenarioContext) -> Outcome:
    """Estimate the target segment's success rate after `decision` (pure, deterministic).

    `snap` is the snapshot of `decision.target_segment()`. The Outcome carries `before`,
    `after`, `improvement`, a ~90% `interval` on `after`, `fee_delta_bps` (the change in
    the segment's average processor fee, when fees are known) and a `note`.
    """
    spec = actions.get(decision.action)
    est = spec.estimate(spec.params.model_validate(decision.params), snap, context.processors)
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
