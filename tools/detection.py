"""Anomaly detection over segment metrics: significant, material and FDR-corrected.

Every registered signal (tools/signals/) is run the same way on every segment: a segment
is tested when both windows hold enough units, flagged when its p-value survives
Benjamini-Hochberg across every segment tested on that signal and its effect is
material. The same signals drive root-cause localization, so "anomalous" means the same
thing in both places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tools.config import ObserveConfig
from tools.contract import Severity
from tools.metrics import LeafKey, SegmentMetrics, SegmentTable
from tools.signals import registry
from tools.signals.base import Counts, Signal
from tools.stats import benjamini_hochberg

# At most this many unexplained segments, the most surprising first, are looked into one
# dimension deeper (each costs one small rollup over its own traffic): those whose change
# quiet traffic would show in one table out of ten (p below 0.1 / tests).
MAX_SCREENED = 3
SCREEN_CHANCE = 0.1


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
    # Segments at the table's depth whose change quiet traffic would show in one table
    # out of ten (p below 0.1 / tests) while nothing is flagged on them or above them: a
    # change too diluted to flag here may be sharp one dimension deeper.
    screened: tuple[LeafKey, ...] = ()
    # The false-discovery level each signal family ran at (its share of `cfg.fdr`).
    family_fdr: dict[str, float] = field(default_factory=dict)

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
    success-rate test. Each family runs at its signal's share of `cfg.fdr`.
    """
    bound = tuple(signals if signals is not None else registry.bind(table, cfg))
    segments = list(table.segments.values())
    families: dict[str, list[tuple[SegmentMetrics, Signal, Counts, float]]] = {}
    for signal in bound:
        family = families.setdefault(signal.name, [])
        for m in segments:
            c = signal.counts(m)
            if signal.enough_sample(c):
                # No change for the worse: a one-sided p-value of at least a half, which
                # no level below that rejects; it still counts as a test.
                p = signal.p_value(c) if signal.effect(c) > 0 else 1.0
                family.append((m, signal, c, p))
    p_cutoffs: dict[str, float] = {}
    strict: dict[str, float] = {}
    levels: dict[str, float] = {}
    detections: list[Detection] = []
    tests = 0
    # Each signal family is one more chance for quiet traffic to look anomalous: a family
    # runs at its share of `fdr` (SignalSpec.fdr_share).
    shares = {s.name: registry.get(s.name).fdr_share for s in bound}
    screen = SCREEN_CHANCE / max(sum(len(f) for f in families.values()), 1)
    candidates = [
        (p, signal.name, m.key)
        for family in families.values()
        for m, signal, c, p in family
        if p <= screen and len(m.key) == table.depth and signal.effect(c) > 0
    ]
    for name, family in families.items():
        fdr = levels[name] = cfg.fdr * shares[name]
        tests += len(family)
        flags = benjamini_hochberg([t[3] for t in family], fdr)
        p_cutoffs[name] = max((t[3] for t, f in zip(family, flags, strict=True) if f), default=0.0)
        strict[name] = fdr / max(len(family), 1)
        for (m, signal, c, p), significant in zip(family, flags, strict=True):
            if not significant or not signal.material(c) or not signal.confirm(m):
                continue
            detections.append(_detection(m, signal, c, p))
    # Nothing flagged on the segment or above it, on any signal: an incident already seen
    # there is localized (and looked into) by root cause.
    flagged = {d.key for d in detections}
    candidates.sort()
    screened = dict.fromkeys(
        key
        for _, _, key in candidates
        if key not in flagged
        and not any(key[:i] + key[i + 1 :] in flagged for i in range(len(key)))
    )
    return DetectionResult(
        detections, tests, p_cutoffs, strict, bound, tuple(screened)[:MAX_SCREENED], levels
    )


def _detection(m: SegmentMetrics, signal: Signal, c: Counts, p: float) -> Detection:
    before, now = signal.levels(m, c)
    return Detection(
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


def detect_deeper(
    result: DetectionResult, table: SegmentTable, keys: Sequence[LeafKey]
) -> DetectionResult:
    """`result` plus the detections among `keys`, segments deeper than `table.depth`.

    They pay Bonferroni over the whole deeper level (`table.deep_level`), far stricter
    than the families' Benjamini-Hochberg levels, so the families need no new pass.
    """
    found = list(result.detections)
    for signal in result.signals:
        for key in keys:
            m = table.get(key)
            c = signal.counts(m)
            if not signal.enough_sample(c) or signal.effect(c) <= 0:
                continue
            p = signal.p_value(c)
            deep = table.deep_level(key, result.family_fdr[signal.name])
            level = min(result.cause_cutoff(signal.name), deep)
            if p <= level and signal.material(c) and signal.confirm(m):
                found.append(_detection(m, signal, c, p))
    return replace(result, detections=found, tests=result.tests + len(keys) * len(result.signals))
