"""3DS challenge failure rate: failed authentications over challenged 3DS attempts.

Only 3DS attempts that were challenged count (a frictionless or non-3DS attempt cannot
fail a challenge), so an access control server failure shows in full even where
challenges are a small share of traffic and the success rate barely moves. A segment
without challenges has nothing to test. Material from a rise of `three_ds_min_rise`.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, Signal, SignalSpec, single
from tools.signals.names import FAILURES, THREE_DS_FAILURE


class ThreeDSFailure(Signal):
    """Failed 3DS authentications over challenged 3DS attempts."""

    name = THREE_DS_FAILURE
    severity_levels = (0.5, 0.2)

    def counts(self, m: SegmentMetrics) -> Counts:
        """Challenged 3DS attempts and failed ones in each window."""
        return Counts(
            m.baseline.challenged,
            m.baseline.three_ds_failed,
            m.current.challenged,
            m.current.three_ds_failed,
        )

    def min_effect(self) -> float:
        """A rise of `three_ds_min_rise` in the failure rate."""
        return self.cfg.three_ds_min_rise


SIGNAL = SignalSpec(
    name=THREE_DS_FAILURE,
    measures=FAILURES,
    unit="rate",
    bind=single(ThreeDSFailure),
    description="failed 3DS authentications over challenged 3DS attempts",
    fdr_share=0.2,
)
