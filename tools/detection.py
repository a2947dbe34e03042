"""Anomaly detection over segment metrics: significant, material and FDR-corrected.

Each metric is a *count model*: per segment it reads additive counts (attempts and "bad"
events in each window) from the metrics table, and says how big the effect is, how
surprising it is, and how many bad events it added. The same models drive root-cause
localization, so "anomalous" means the same thing in both places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tools.config import ObserveConfig
from tools.contract import Severity
from tools.metrics import LATENCY_EDGES_MS, LeafKey, SegmentMetrics, SegmentTable, WindowStats
from tools.stats import benjamini_hochberg, normal_sf, rate_increase_p_value

MetricName = Literal["success_rate", "volume", "latency_p95"]


@dataclass(frozen=True)
class Counts:
    """Additive counts of one segment: attempts and bad events in each window."""

    baseline_n: float
    baseline_x: float
    current_n: float
    current_x: float

    def minus(self, other: Counts) -> Counts:
        """These counts with a sub-segment's counts removed."""
        return Counts(
            self.baseline_n - other.baseline_n,
            self.baseline_x - other.baseline_x,
            self.current_n - other.current_n,
            self.current_x - other.current_x,
        )


class CountModel:
    """How one metric turns counts into an effect, a p-value and an excess."""

    name: MetricName = "success_rate"

    def counts(self, m: SegmentMetrics) -> Counts:
        """The segment's additive counts for this metric."""
        raise NotImplementedError

    def effect(self, c: Counts) -> float:
        """Size of the change, positive when it got worse."""
        b = c.baseline_x / c.baseline_n if c.baseline_n > 0 else 0.0
        cur = c.current_x / c.current_n if c.current_n > 0 else 0.0
        return cur - b

    def p_value(self, c: Counts) -> float:
        """One-sided p-value of the change being real."""
        return rate_increase_p_value(c.baseline_n, c.baseline_x, c.current_n, c.current_x)

    def excess(self, c: Counts) -> float:
        """Bad events in the current window beyond what the baseline predicts."""
        if c.baseline_n <= 0:
            return 0.0
        return c.current_x - c.current_n * (c.baseline_x / c.baseline_n)

    def enough_sample(self, c: Counts, min_sample: int) -> bool:
        """Whether both windows hold enough attempts to test."""
        return c.baseline_n >= min_sample and c.current_n >= min_sample

    def spared_log_odds(self, c: Counts, effect: float) -> float:
        """Log-likelihood ratio of "untouched" over "hit by a problem of size `effect`".

        Positive when the counts look spared, negative when they look hit, near zero when
        they are too few to tell.
        """
        if c.baseline_n <= 0 or c.current_n <= 0 or effect <= 0:
            return 0.0
        p0 = min(max(c.baseline_x / c.baseline_n, 1e-6), 1.0 - 1e-6)
        p1 = min(max(p0 + effect, 1e-6), 1.0 - 1e-6)
        hits, misses = c.current_x, c.current_n - c.current_x
        return hits * math.log(p0 / p1) + misses * math.log((1.0 - p0) / (1.0 - p1))

    def material(self, c: Counts, cfg: ObserveConfig) -> bool:
        """Whether the effect is big enough to matter."""
        raise NotImplementedError


class FailureModel(CountModel):
    """Success rate: the bad events are failures (declines and errors)."""

    name: MetricName = "success_rate"

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts and failures in each window."""
        return Counts(
            m.baseline.attempts, m.baseline.failures, m.current.attempts, m.current.failures
        )

    def material(self, c: Counts, cfg: ObserveConfig) -> bool:
        """A drop of at least `min_effect_pp` percentage points."""
        return self.effect(c) * 100.0 >= cfg.min_effect_pp


class SlowModel(CountModel):
    """Latency: the bad events are attempts slower than a threshold fixed for all segments.

    A common threshold (the edge at or above the overall baseline p95) keeps the counts
    additive across segments, which percentiles are not.
    """

    name: MetricName = "latency_p95"

    def __init__(self, table: SegmentTable) -> None:
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

    def material(self, c: Counts, cfg: ObserveConfig) -> bool:
        """At least 10 pp more slow attempts (p95 shift is checked on the segment)."""
        return self.effect(c) >= 0.10


class VolumeModel(CountModel):
    """Volume: attempts per minute against the baseline's pace.

    Under no change, each attempt of the segment falls in the current window with
    probability current/(baseline+current) minutes; a drop is a binomial left tail.
    """

    name: MetricName = "volume"

    def __init__(self, table: SegmentTable) -> None:
        self.ratio = table.duration_ratio

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts in each window (bad events unused)."""
        return Counts(m.baseline.attempts, 0.0, m.current.attempts, 0.0)

    def expected(self, c: Counts) -> float:
        """Current-window attempts the baseline pace predicts."""
        return c.baseline_n * self.ratio

    def effect(self, c: Counts) -> float:
        """Relative drop in volume (0.6 = 60% fewer attempts than expected)."""
        exp = self.expected(c)
        return 1.0 - c.current_n / exp if exp > 0 else 0.0

    def p_value(self, c: Counts) -> float:
        """Left tail of the current count under the baseline pace."""
        total = c.baseline_n + c.current_n
        if total <= 0:
            return 1.0
        share = self.ratio / (1.0 + self.ratio)
        mean = total * share
        sd = math.sqrt(total * share * (1.0 - share))
        if sd <= 0:
            return 1.0
        return normal_sf((mean - c.current_n - 0.5) / sd)

    def spared_log_odds(self, c: Counts, effect: float) -> float:
        """Log-likelihood ratio (Poisson) of "pace kept" over "pace dropped by `effect`"."""
        pace = self.expected(c)
        dropped = pace * (1.0 - min(effect, 1.0 - 1e-6))
        if pace <= 0 or effect <= 0:
            return 0.0
        return c.current_n * math.log(pace / dropped) - (pace - dropped)

    def excess(self, c: Counts) -> float:
        """Attempts missing from the current window."""
        return self.expected(c) - c.current_n

    def enough_sample(self, c: Counts, min_sample: int) -> bool:
        """The baseline predicts at least `min_sample` current attempts."""
        return self.expected(c) >= min_sample

    def material(self, c: Counts, cfg: ObserveConfig) -> bool:
        """A relative drop of at least `volume_min_drop`."""
        return self.effect(c) >= cfg.volume_min_drop


@dataclass(frozen=True)
class Detection:
    """One flagged (segment, metric) with its evidence."""

    key: LeafKey
    metric: MetricName
    baseline: float
    current: float
    effect: float
    p_value: float
    excess: float
    severity: Severity
    baseline_attempts: int
    current_attempts: int

    @property
    def segment(self) -> dict[str, str]:
        """The segment in CONTRACT form."""
        return dict(self.key)


@dataclass(frozen=True)
class DetectionResult:
    """Everything flagged, plus the p-value cut-offs of each metric's tests.

    `p_cutoffs` is what Benjamini-Hochberg chose; `strict_cutoffs` is the Bonferroni level,
    which root-cause localization also requires: a cause must stand out on its own, not
    only ride on the many true detections around a real incident.
    """

    detections: list[Detection]
    tests: int
    p_cutoffs: dict[str, float]
    strict_cutoffs: dict[str, float]

    def cause_cutoff(self, metric: str) -> float:
        """The p-value a root-cause segment of `metric` must reach."""
        return min(self.p_cutoffs.get(metric, 0.0), self.strict_cutoffs.get(metric, 0.0))


def count_models(table: SegmentTable) -> list[CountModel]:
    """The metrics observe tests, in order of importance."""
    return [FailureModel(), VolumeModel(table), SlowModel(table)]


def _severity(
    metric: MetricName, effect: float, before: WindowStats, after: WindowStats
) -> Severity:
    if metric == "success_rate":
        return "critical" if effect >= 0.15 else "warning" if effect >= 0.07 else "info"
    if metric == "volume":
        return "critical" if effect >= 0.7 else "warning" if effect >= 0.5 else "info"
    ratio = after.latency_p95 / before.latency_p95 if before.latency_p95 > 0 else 1.0
    return "critical" if ratio >= 3.0 else "warning" if ratio >= 2.0 else "info"


def _latency_shift_ok(m: SegmentMetrics, cfg: ObserveConfig) -> bool:
    before, after = m.baseline.latency_p95, m.current.latency_p95
    return after >= before * cfg.latency_min_ratio and after - before >= cfg.latency_min_shift_ms


def detect(table: SegmentTable, cfg: ObserveConfig) -> DetectionResult:
    """Flag segments whose success rate, volume or latency changed significantly.

    A (segment, metric) is flagged when both windows hold enough attempts, the effect is
    material, and its p-value survives Benjamini-Hochberg over every test made.
    """
    models = count_models(table)
    tested: list[tuple[SegmentMetrics, CountModel, Counts, float]] = []
    for m in table.segments.values():
        for model in models:
            c = model.counts(m)
            if model.enough_sample(c, cfg.min_sample):
                tested.append((m, model, c, model.p_value(c)))
    # BH per metric: a flood of true latency flags must not relax the success-rate test.
    rejected = [False] * len(tested)
    p_cutoffs: dict[str, float] = {}
    strict: dict[str, float] = {}
    for model in models:
        idx = [i for i, t in enumerate(tested) if t[1] is model]
        flags = benjamini_hochberg([tested[i][3] for i in idx], cfg.fdr)
        for i, flag in zip(idx, flags, strict=True):
            rejected[i] = flag
        p_cutoffs[model.name] = max(
            (tested[i][3] for i, f in zip(idx, flags, strict=True) if f), default=0.0
        )
        strict[model.name] = cfg.fdr / max(len(idx), 1)
    detections: list[Detection] = []
    for (m, model, c, p), significant in zip(tested, rejected, strict=True):
        if not significant or not model.material(c, cfg):
            continue
        if model.name == "latency_p95" and not _latency_shift_ok(m, cfg):
            continue
        effect = model.effect(c)
        if model.name == "success_rate":
            before, now = m.baseline.success_rate, m.current.success_rate
        elif model.name == "volume":
            before, now = c.baseline_n * table.duration_ratio, c.current_n
        else:
            before, now = m.baseline.latency_p95, m.current.latency_p95
        detections.append(
            Detection(
                key=m.key,
                metric=model.name,
                baseline=before,
                current=now,
                effect=effect,
                p_value=p,
                excess=model.excess(c),
                severity=_severity(model.name, effect, m.baseline, m.current),
                baseline_attempts=m.baseline.attempts,
                current_attempts=m.current.attempts,
            )
        )
    return DetectionResult(detections, len(tested), p_cutoffs, strict)
