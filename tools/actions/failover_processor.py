"""Move a segment's traffic off a failing processor, for a while.

For a processor that is down (DOMAIN.md): all but a probe of the segment's traffic goes to
another processor until the TTL expires. Never the last healthy route; a human approves.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import ActionLimit, ActionSpec, Estimate, Incident, Playbook, Snapshot
from tools.fields import ClosedModel, Processor, ProcessorInfo, SegmentField

TTL = ActionLimit(
    "max_failover_ttl_minutes", 240, "ceiling", "a failover expires within 4 h", integer=True
)
# Share of a failed-over segment that keeps probing the failed processor so its recovery
# is seen (DOMAIN.md: 1-5% probe traffic stays).
PROBE_PCT = 5.0
# What the reasoner proposes: an hour, within the TTL ceiling.
DEFAULT_TTL_MINUTES = 60


class FailoverProcessorParams(ClosedModel):
    segment: SegmentField
    from_processor: Processor
    to_processor: Processor
    ttl_minutes: int = Field(gt=0, description="integer > 0")


def estimate(
    p: FailoverProcessorParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The segment's rate with all but the probe share at the target's rate."""
    est = estimates.move(snap, processors, p.from_processor, p.to_processor, 1 - PROBE_PCT / 100)
    return Estimate(
        est.after, est.variance, f"{est.note}; {PROBE_PCT:g}% probes", est.fee_delta_bps
    )


def candidates(incident: Incident) -> list[FailoverProcessorParams]:
    """Fail the root cause's processor over to its best healthy route, within the TTL."""
    ttl = incident.ttl_minutes(TTL, DEFAULT_TTL_MINUTES)
    return incident.moves(FailoverProcessorParams, ttl_minutes=ttl) if ttl > 0 else []


ACTION = ActionSpec(
    name="failover_processor",
    params=FailoverProcessorParams,
    risk="high",
    description="move the segment's traffic off the source processor, all but a probe, until "
    "`ttl_minutes` pass",
    estimate=estimate,
    min_evidence=200,
    ttl=TTL,
    playbook=Playbook(kinds={"processor_outage": 1}),
    candidates=candidates,
)
