"""A toy signal, written the way a new signal is added to tools/signals/.

Retry share: attempts that are retries over attempts. A merchant whose integration
starts retrying every decline floods its processors with repeats. Only the registry line
is missing, and tests/test_signals.py supplies it with `registered(SIGNAL)`.
"""

from __future__ import annotations

from tools.metrics import SegmentMetrics
from tools.signals.base import Counts, Signal, SignalSpec, single
from tools.signals.names import FAILURES

RETRY_SHARE = "retry_share"


class RetryShare(Signal):
    """Retries over attempts."""

    name = RETRY_SHARE

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts and retries in each window."""
        return Counts(
            m.baseline.attempts, m.baseline.retries, m.current.attempts, m.current.retries
        )

    def min_effect(self) -> float:
        """Ten percentage points more of attempts are retries."""
        return 0.10


SIGNAL = SignalSpec(
    name=RETRY_SHARE,
    measures=FAILURES,
    unit="rate",
    bind=single(RetryShare),
    description="retries over attempts",
)
