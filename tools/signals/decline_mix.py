"""Soft/hard decline mix: hard declines over declines.

A hard decline (never retry as is: category 1 and 3, a fraud screen, an authentication
refusal) replacing soft ones means something now refuses outright, even when the
success rate moves little. Technical declines (91/96) are neither and count in the
denominator only. Material from a rise of `hard_share_min_rise` in the hard share.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, Signal, SignalSpec, single
from tools.signals.names import FAILURES, HARD_DECLINE_SHARE


class HardDeclineShare(Signal):
    """Hard declines over declines."""

    name = HARD_DECLINE_SHARE
    severity_levels = (0.4, 0.25)

    def counts(self, m: SegmentMetrics) -> Counts:
        """Declines and hard declines in each window."""
        return Counts(m.baseline.declined, m.baseline.hard, m.current.declined, m.current.hard)

    def min_effect(self) -> float:
        """A rise of `hard_share_min_rise` in the hard share of declines."""
        return self.cfg.hard_share_min_rise


SIGNAL = SignalSpec(
    name=HARD_DECLINE_SHARE,
    measures=FAILURES,
    unit="rate",
    bind=single(HardDeclineShare),
    description="hard declines over declines (the soft/hard decline mix)",
    fdr_share=0.2,
)
