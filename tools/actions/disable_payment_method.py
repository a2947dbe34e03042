"""Stop offering a payment method on a segment, for a while.

A method that only fails (a broken wallet integration) wastes shoppers' attempts. Never
proposed by the reasoner on its own; a human approves.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.actions import estimates
from tools.actions.spec import ActionLimit, ActionSpec, Estimate, Snapshot, TimedSegmentParams
from tools.fields import ProcessorInfo

TTL = ActionLimit(
    "max_disable_ttl_minutes", 120, "ceiling", "a disabled method returns within 2 h", integer=True
)


class DisablePaymentMethodParams(TimedSegmentParams):
    """Where and for how long the payment method is off."""


def estimate(
    p: DisablePaymentMethodParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """No gain on the segment's rate: its failing attempts stop, they are not approved."""
    return estimates.unchanged(snap, "stops failing attempts; no success-rate gain on the segment")


ACTION = ActionSpec(
    name="disable_payment_method",
    params=DisablePaymentMethodParams,
    risk="high",
    description="stop offering the segment's payment method until `ttl_minutes` pass",
    estimate=estimate,
    min_evidence=200,
    ttl=TTL,
)
