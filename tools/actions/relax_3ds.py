"""Send a segment's attempts with a 3-D Secure exemption, for a while.

When an issuer's 3DS server fails, an exemption lets attempts through without the
challenge. Never where strong customer authentication applies (guard's `relax_3ds_sca`);
a human approves.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.actions import estimates
from tools.actions.force_3ds import TTL
from tools.actions.spec import (
    ActionSpec,
    Estimate,
    Incident,
    Playbook,
    Snapshot,
    TimedSegmentParams,
)
from tools.fields import ProcessorInfo

# Assumption where the data cannot tell (an order-of-magnitude figure): share of
# failed-3DS attempts an issuer approves when sent with an exemption.
EXEMPTION_ACCEPTANCE = 0.5
# What the reasoner proposes: an hour, within the TTL ceiling.
DEFAULT_TTL_MINUTES = 60


class Relax3dsParams(TimedSegmentParams):
    """Where and for how long 3-D Secure is relaxed."""


def estimate(
    p: Relax3dsParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The failed-3DS attempts an issuer accepts with an exemption, approved."""
    n = snap.three_ds_failed
    return estimates.recover(
        snap,
        n * EXEMPTION_ACCEPTANCE,
        f"{n} failed-3DS attempts sent with an exemption, {EXEMPTION_ACCEPTANCE:.0%} accepted",
    )


def candidates(incident: Incident) -> list[Relax3dsParams]:
    """Relax 3DS on the root cause for an hour (never on all traffic), within the TTL."""
    ttl = incident.ttl_minutes(TTL, DEFAULT_TTL_MINUTES)
    if not incident.segment or ttl < 1:
        return []
    return [Relax3dsParams(segment=incident.segment, ttl_minutes=ttl)]


ACTION = ActionSpec(
    name="relax_3ds",
    params=Relax3dsParams,
    risk="high",
    description="send the segment's attempts with a 3-D Secure exemption until `ttl_minutes` pass",
    estimate=estimate,
    min_evidence=200,
    ttl=TTL,
    playbook=Playbook(kinds={"three_ds_failure": 1}),
    candidates=candidates,
)
