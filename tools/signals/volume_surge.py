"""Volume surge: a segment's attempts rising against both the pace and the traffic mix.

A segment whose share of traffic jumps shifts the overall success rate without any rate
dropping (more attempts from a low-approval country, say): a mix shift, not an incident
to fix. It is a surge only if it rises against the baseline's pace *and* against its
share of all traffic, so busier hours (everything rises) and another segment's drop
(the rest's share rises) are not surges. Material from a rise of `surge_min_rise`.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, PaceSignal, SignalSpec, single
from tools.signals.names import SURPLUS, VOLUME_SURGE


class VolumeSurge(PaceSignal):
    """Extra attempts against the larger of pace and traffic-share predictions."""

    name = VOLUME_SURGE
    direction = 1
    severity_levels = (2.0, 1.0)

    def ratio(self) -> float:
        """The larger of the duration ratio and the ratio of all attempts."""
        total = self.table.total
        share = total.current.attempts / total.baseline.attempts if total.baseline.attempts else 0.0
        return max(self.table.duration_ratio, share)

    def min_effect(self) -> float:
        """A relative rise of `surge_min_rise`."""
        return self.cfg.surge_min_rise

    def lost_approvals(self, m: SegmentMetrics, c: Counts) -> float:
        """What the extra attempts cost the overall rate: those below its baseline rate."""
        gap = self.table.total.baseline.success_rate - m.baseline.success_rate
        return max(self.excess(c), 0.0) * max(gap, 0.0)


SIGNAL = SignalSpec(
    name=VOLUME_SURGE,
    measures=SURPLUS,
    unit="attempts",
    bind=single(VolumeSurge),
    description="attempts above both the baseline's pace and share (a traffic-mix shift)",
    fdr_share=0.2,
)
