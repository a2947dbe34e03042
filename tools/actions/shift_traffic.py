"""Move part of a processor's traffic on a segment to a healthier processor.

The first remedy for a processor that fails on a segment (DOMAIN.md): a partial shift
keeps some traffic on the source, so its recovery is seen, and is undone by shifting back.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import ActionLimit, ActionSpec, Estimate, Incident, Playbook, Snapshot
from tools.fields import ClosedModel, Processor, ProcessorInfo, SegmentField

MAX_STEP = ActionLimit(
    "max_shift_step_pp", 50.0, "ceiling", "shifts move at most 50 pp of a segment per hour, in all"
)
MIN_EXPLORATION = ActionLimit(
    "min_source_exploration_pct", 5.0, "floor", "a shift keeps >= 5% on the source to explore"
)
# What the reasoner proposes: half the source's traffic, within the limits.
DEFAULT_PERCENT = 50.0


class ShiftTrafficParams(ClosedModel):
    segment: SegmentField
    from_processor: Processor
    to_processor: Processor
    percent: float = Field(gt=0, le=100, description="0 < percent <= 100")


def estimate(
    p: ShiftTrafficParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The segment's rate with `percent` of the source's traffic at the target's rate."""
    return estimates.move(snap, processors, p.from_processor, p.to_processor, p.percent / 100)


def candidates(incident: Incident) -> list[ShiftTrafficParams]:
    """Shift off the root cause's processor to its best healthy route, as far as the
    step limit and the exploration floor allow."""
    limits = incident.limits
    percent = min(DEFAULT_PERCENT, limits.of(MAX_STEP), 100 - limits.of(MIN_EXPLORATION))
    return incident.moves(ShiftTrafficParams, percent=percent) if percent > 0 else []


ACTION = ActionSpec(
    name="shift_traffic",
    params=ShiftTrafficParams,
    risk="medium",
    description="move `percent` of the source processor's traffic on the segment to another "
    "processor; the rest stays on the source",
    estimate=estimate,
    min_evidence=100,
    limits=(MAX_STEP, MIN_EXPLORATION),
    playbook=Playbook(
        kinds={"processor_outage": 0, "processor_degradation": 0, "latency_spike": 0}
    ),
    candidates=candidates,
)
