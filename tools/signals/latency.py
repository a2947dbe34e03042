"""Latency: attempts slower than one threshold fixed for every segment.

A common threshold (the latency edge at or above the overall baseline p95) keeps the
counts additive across segments, which percentiles are not. Material from 10 pp more
slow attempts; a segment is flagged only if its p95 also moved by `latency_min_ratio`
and `latency_min_shift_ms`.
"""

from __future__ import annotations

from tools.config import ObserveConfig
from tools.contract import Severity
from tools.metrics import LATENCY_EDGES_MS, SegmentMetrics, SegmentTable
from tools.signals.base import Counts, Signal, SignalSpec, single
from tools.signals.names import LATENCY, SLOWNESS

# Share of attempts past the threshold that must be added (the threshold is the baseline
# p95, so 5% of attempts pass it before; 15% after means the slow tail tripled).
MIN_SLOW_SHARE_RISE = 0.10
# What one slow attempt weighs against one lost approval when ranking incidents: a slow
# checkout hurts, but far less than a declined one.
SLOW_ATTEMPT_WEIGHT = 0.1


class Latency(Signal):
    """Attempts slower than the overall baseline p95."""

    name = LATENCY
    unit = "ms"

    def __init__(self, table: SegmentTable, cfg: ObserveConfig) -> None:
        super().__init__(table, cfg)
        p95 = table.total.baseline.latency_p95
        self.edge_index = next(
            (i for i, e in enumerate(LATENCY_EDGES_MS) if e >= p95), len(LATENCY_EDGES_MS) - 1
        )
        self.threshold_ms = LATENCY_EDGES_MS[self.edge_index]

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts and attempts slower than the threshold in each window."""
        return Counts(
            m.baseline.attempts,
            m.baseline.latency_at_least[self.edge_index],
            m.current.attempts,
            m.current.latency_at_least[self.edge_index],
        )

    def min_effect(self) -> float:
        """`MIN_SLOW_SHARE_RISE` more slow attempts."""
        return MIN_SLOW_SHARE_RISE

    def confirm(self, m: SegmentMetrics) -> bool:
        """The segment's own p95 moved by the minimum ratio and shift."""
        before, after = m.baseline.latency_p95, m.current.latency_p95
        return (
            after >= before * self.cfg.latency_min_ratio
            and after - before >= self.cfg.latency_min_shift_ms
        )

    def levels(self, m: SegmentMetrics, c: Counts) -> tuple[float, float]:
        """p95 latency, ms."""
        return m.baseline.latency_p95, m.current.latency_p95

    def severity(self, m: SegmentMetrics, c: Counts) -> Severity:
        """From the p95 ratio: x3 critical, x2 warning."""
        before, after = m.baseline.latency_p95, m.current.latency_p95
        ratio = after / before if before > 0 else 1.0
        return "critical" if ratio >= 3.0 else "warning" if ratio >= 2.0 else "info"

    def lost_approvals(self, m: SegmentMetrics, c: Counts) -> float:
        """Slow attempts, each weighing `SLOW_ATTEMPT_WEIGHT` of an approval."""
        return max(self.excess(c), 0.0) * SLOW_ATTEMPT_WEIGHT


SIGNAL = SignalSpec(
    name=LATENCY,
    measures=SLOWNESS,
    unit="ms",
    bind=single(Latency),
    description="attempts slower than the overall baseline p95 (shown as p95, ms)",
)
