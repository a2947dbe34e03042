"""Success rate: approved attempts over attempts; the bad events are failures.

Tested as a one-sided two-proportion test of the failure rate; material from a drop of
`min_effect_pp` percentage points.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, Signal, SignalSpec, single
from tools.signals.names import FAILURES, SUCCESS_RATE


class SuccessRate(Signal):
    """Failures (declines and errors) over attempts."""

    name = SUCCESS_RATE

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts and failures in each window."""
        return Counts(
            m.baseline.attempts, m.baseline.failures, m.current.attempts, m.current.failures
        )

    def min_effect(self) -> float:
        """A drop of `min_effect_pp` percentage points."""
        return self.cfg.min_effect_pp / 100.0

    def levels(self, m: SegmentMetrics, c: Counts) -> tuple[float, float]:
        """The success rates themselves."""
        return m.baseline.success_rate, m.current.success_rate


SIGNAL = SignalSpec(
    name=SUCCESS_RATE,
    measures=FAILURES,
    unit="rate",
    bind=single(SuccessRate),
    description="approved attempts over attempts (authorization rate)",
    loses_approvals=True,
)
