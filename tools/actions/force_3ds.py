"""Challenge a segment's shoppers with 3-D Secure, for a while.

Where issuers decline with 1A (authentication required), stepping up lets the shoppers
who complete the challenge through. Never proposed by the reasoner on its own; a model or
a person may propose it.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.actions import estimates
from tools.actions.spec import ActionLimit, ActionSpec, Estimate, Snapshot, TimedSegmentParams
from tools.decline_codes import AUTHENTICATION_REQUIRED
from tools.fields import ProcessorInfo

# One ceiling for both 3DS policy changes (relax_3ds shares it): users set it once.
TTL = ActionLimit(
    "max_3ds_ttl_minutes", 240, "ceiling", "force/relax 3DS expire within 4 h", integer=True
)
# Assumption where the data cannot tell (an order-of-magnitude figure): share of
# 1A-declined shoppers who complete a forced challenge.
STEP_UP_COMPLETION = 0.7


class Force3dsParams(TimedSegmentParams):
    """Where and for how long 3-D Secure is forced."""


def estimate(
    p: Force3dsParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The 1A declines that complete a challenge, approved at the approval rate."""
    n = snap.decline_codes.get(AUTHENTICATION_REQUIRED, 0)
    return estimates.recover(
        snap,
        n * STEP_UP_COMPLETION,
        f"{n} 1A declines stepped up, {STEP_UP_COMPLETION:.0%} complete the challenge; "
        "challenge abandonment on other traffic not modelled",
    )


ACTION = ActionSpec(
    name="force_3ds",
    params=Force3dsParams,
    risk="medium",
    description="challenge every shopper of the segment with 3-D Secure until `ttl_minutes` pass",
    estimate=estimate,
    min_evidence=100,
    ttl=TTL,
)
