"""Volume: attempts per minute against the baseline's pace; a drop is the bad direction.

A checkout that breaks sends no failing attempts at all: the attempts stop arriving.
Material from a relative drop of `volume_min_drop`.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, PaceSignal, SignalSpec, single
from tools.signals.names import MISSING, VOLUME


class Volume(PaceSignal):
    """Missing attempts against the baseline's pace."""

    name = VOLUME
    severity_levels = (0.7, 0.5)

    def min_effect(self) -> float:
        """A relative drop of `volume_min_drop`."""
        return self.cfg.volume_min_drop

    def lost_approvals(self, m: SegmentMetrics, c: Counts) -> float:
        """Missing attempts at the segment's baseline success rate."""
        return max(self.excess(c), 0.0) * m.baseline.success_rate


SIGNAL = SignalSpec(
    name=VOLUME,
    measures=MISSING,
    unit="attempts",
    bind=single(Volume),
    description="attempts against the baseline's pace (a drop)",
    loses_approvals=True,
)
