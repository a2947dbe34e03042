"""Error and timeout rate: gateway-side failures over attempts.

The bad events are attempts with status `error` or a gateway code (timeout, processing
error, 5xx): what a processor outage produces, and what a slow route produces once its
slowest attempts time out. Material when the rate rises by `error_min_effect_pp` and to
at least `error_min_ratio` times the baseline: errors are rare, so a spike is relative.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, Signal, SignalSpec, single
from tools.signals.names import ERROR_RATE, FAILURES


class ErrorRate(Signal):
    """Errors and timeouts over attempts."""

    name = ERROR_RATE
    severity_levels = (0.10, 0.04)

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts and gateway failures in each window."""
        return Counts(
            m.baseline.attempts,
            m.baseline.gateway_errors,
            m.current.attempts,
            m.current.gateway_errors,
        )

    def min_effect(self) -> float:
        """A rise of `error_min_effect_pp` percentage points."""
        return self.cfg.error_min_effect_pp / 100.0

    def material(self, c: Counts) -> bool:
        """Risen by the minimum, and by the minimum ratio."""
        return (
            self.effect(c) >= self.min_effect()
            and c.current_rate >= self.cfg.error_min_ratio * c.baseline_rate
        )


SIGNAL = SignalSpec(
    name=ERROR_RATE,
    measures=FAILURES,
    unit="rate",
    bind=single(ErrorRate),
    description="errors and timeouts over attempts",
    fdr_share=0.2,
)
