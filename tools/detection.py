"""Anomaly detection over segment metrics: significant, material and FDR-corrected.

Every registered signal (tools/signals/) is run the same way on every segment: a segment
is tested when both windows hold enough units, flagged when its p-value survives
Benjamini-Hochberg across every segment tested on that signal and its effect is
material. The same signals drive root-cause localization, so "anomalous" means the same
thing in both places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tools.config import ObserveConfig
from tools.contract import Severity
from tools.metrics import LeafKey, SegmentMetrics, SegmentTable
from tools.signals import registry
from tools.signals.base import Counts, Signal
from tools.stats import benjamini_hochberg

# A segment at the deepest measured level with a p-value this small, uncorrected, is
# looked into one dimension deeper when nothing above it is flagged (depth adapts).
SCREEN_P = 1e-3


@dataclass(frozen=True)
class Detection:
    """One flagged (segment, signal) with its evidence."""

    key: LeafKey
    metric: str
    detail: str | None
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
    """Everything flagged, the detectors that ran, and each signal's p-value cut-offs.

    `p_cutoffs` is what Benjamini-Hochberg chose; `strict_cutoffs` is the Bonferroni level,
    which root-cause localization also requires: a cause must stand out on its own, not
    only ride on the many true detections around a real incident.
    """

    detections: list[Detection]
    tests: int
    p_cutoffs: dict[str, float]
    strict_cutoffs: dict[str, float]
    signals: tuple[Signal, ...] = ()
    # Segments at the table's depth whose change is significant on its own (p at most
    # `SCREEN_P`, before any correction) while no parent of theirs is flagged on that
    # signal: a change too diluted to flag here may be sharp one dimension deeper.
    screened: tuple[LeafKey, ...] = ()

    def cause_cutoff(self, signal: str) -> float:
        """The p-value a root-cause segment of `signal` must reach."""
        return min(self.p_cutoffs.get(signal, 0.0), self.strict_cutoffs.get(signal, 0.0))

    def flagged(self) -> list[Signal]:
        """The detectors with at least one detection, in registry order."""
        found = {(d.metric, d.detail) for d in self.detections}
        return [s for s in self.signals if (s.name, s.detail) in found]


def detect(
    table: SegmentTable, cfg: ObserveConfig, signals: Sequence[Signal] | None = None
) -> DetectionResult:
    """Flag the segments where any registered signal changed significantly and materially.

    Benjamini-Hochberg runs per signal (all detectors of a signal, e.g. every candidate
    decline code, are one family): a flood of true latency flags must not relax the
    success-rate test. The families split `cfg.fdr` between them.
    """
    bound = tuple(signals if signals is not None else registry.bind(table, cfg))
    segments = list(table.segments.values())
    families: dict[str, list[tuple[SegmentMetrics, Signal, Counts, float]]] = {}
    for signal in bound:
        family = families.setdefault(signal.name, [])
        for m in segments:
            c = signal.counts(m)
            if signal.enough_sample(c):
                family.append((m, signal, c, signal.p_value(c)))
    p_cutoffs: dict[str, float] = {}
    strict: dict[str, float] = {}
    detections: list[Detection] = []
    tests = 0
    # Each signal is one more chance for quiet traffic to look anomalous: the families
    # share the false-discovery budget, so the whole watch stays at `fdr`.
    fdr = cfg.fdr / max(len(families), 1)
    candidates = [
        (signal.name, m.key)
        for family in families.values()
        for m, signal, c, p in family
        if p <= SCREEN_P and len(m.key) == table.depth and signal.effect(c) > 0
    ]
    for name, family in families.items():
        tests += len(family)
        flags = benjamini_hochberg([t[3] for t in family], fdr)
        p_cutoffs[name] = max((t[3] for t, f in zip(family, flags, strict=True) if f), default=0.0)
        strict[name] = fdr / max(len(family), 1)
        for (m, signal, c, p), significant in zip(family, flags, strict=True):
            if not significant or not signal.material(c) or not signal.confirm(m):
                continue
            if p > table.deep_level(m.key, fdr):
                continue
            before, now = signal.levels(m, c)
            detections.append(
                Detection(
                    key=m.key,
                    metric=signal.name,
                    detail=signal.detail,
                    baseline=before,
                    current=now,
                    effect=signal.effect(c),
                    p_value=p,
                    excess=signal.excess(c),
                    severity=signal.severity(m, c),
                    baseline_attempts=m.baseline.attempts,
                    current_attempts=m.current.attempts,
                )
            )
    flagged = {(d.metric, d.key) for d in detections}
    screened = dict.fromkeys(
        key
        for name, key in candidates
        if (name, key) not in flagged
        and not any((name, key[:i] + key[i + 1 :]) in flagged for i in range(len(key)))
    )
    return DetectionResult(detections, tests, p_cutoffs, strict, bound, tuple(screened))
