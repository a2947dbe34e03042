"""observe: from loaded transactions to anomalies and their root cause.

Windows come from the caller, else from the scenario, else they are inferred (the last
hour against the hours before it; on data shorter than two hours, the last fifth against
the rest). This is the function the graph's observe node and the chat tools both call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from tools.config import ObserveConfig
from tools.contract import AnomalyRecord, CodeShift, Segment, TimeWindow, utc
from tools.data import LEAF_CUBE, DataError, Dataset
from tools.detection import Detection, DetectionResult, count_models, detect
from tools.metrics import (
    LeafKey,
    SegmentTable,
    WindowStats,
    code_mix,
    key_of,
    rollup,
)
from tools.root_cause import RootCause, localize
from tools.windows import windows_for_span

CUBE = LEAF_CUBE
# A code "moved" when its share of attempts rose by at least this much.
CODE_SHIFT_MIN = 0.005


class WindowSummary(BaseModel):
    """The figures the reasoner reads about one segment in one window."""

    model_config = ConfigDict(frozen=True)

    attempts: int
    success_rate: float
    error_rate: float
    technical_share: float
    soft_share: float
    hard_share: float
    challenge_rate: float
    three_ds_failure_rate: float
    latency_p50: float
    latency_p95: float
    latency_p99: float

    @classmethod
    def of(cls, w: WindowStats) -> WindowSummary:
        """Summarise one window's counts."""
        return cls(
            attempts=w.attempts,
            success_rate=round(w.success_rate, 6),
            error_rate=round(w.error_rate, 6),
            technical_share=round(w.technical_share, 6),
            soft_share=round(w.soft_share, 6),
            hard_share=round(w.hard_share, 6),
            challenge_rate=round(w.challenge_rate, 6),
            three_ds_failure_rate=round(w.three_ds_failure_rate, 6),
            latency_p50=round(w.latency_p50, 1),
            latency_p95=round(w.latency_p95, 1),
            latency_p99=round(w.latency_p99, 1),
        )


class SegmentEvidence(BaseModel):
    """What moved in one segment: rates, codes, latency and 3DS, in both windows."""

    model_config = ConfigDict(frozen=True)

    segment: Segment
    baseline: WindowSummary
    current: WindowSummary
    code_shifts: list[CodeShift]


class RootCauseDetail(BaseModel):
    """A root-cause segment with the metric it explains and how much of the change."""

    segment: Segment
    metric: str
    effect: float
    excess: float
    explained_share: float


class Observation(BaseModel):
    """What observe hands to the rest of the loop (checkpointed with the graph state)."""

    baseline: TimeWindow
    current: TimeWindow
    dimensions: list[str]
    anomalous: bool
    anomalies: list[AnomalyRecord]
    root_cause: list[Segment]
    root_causes: list[RootCauseDetail]
    evidence: list[SegmentEvidence]
    overall: SegmentEvidence | None
    tests: int

    def record(self) -> dict[str, object]:
        """The observe part of a CONTRACT.md section 3 record."""
        return {
            "anomalous": self.anomalous,
            "anomalies": [a.model_dump(mode="json") for a in self.anomalies],
            "root_cause": self.root_cause,
        }


def parse_window(text: str, what: str) -> TimeWindow:
    """Parse `START/END` (ISO-8601) into a window, or raise ValueError naming `what`."""
    parts = text.split("/")
    if len(parts) != 2:
        raise ValueError(f"{what}: expected START/END, got {text!r}")
    try:
        start = utc(datetime.fromisoformat(parts[0].strip().replace("Z", "+00:00")))
        end = utc(datetime.fromisoformat(parts[1].strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{what}: cannot parse timestamps in {text!r}") from None
    if end <= start:
        raise ValueError(f"{what}: end must be after start in {text!r}")
    return TimeWindow(start=start, end=end)


def infer_windows(dataset: Dataset) -> tuple[TimeWindow, TimeWindow]:
    """The last hour against up to a day before it (shorter data: last fifth vs the rest)."""
    if dataset.ts_range is not None:
        row: tuple[Any, ...] | None = dataset.ts_range
    else:
        row = dataset.conn.execute(f'SELECT min(ts), max(ts) FROM "{dataset.table}"').fetchone()
    if row is None or row[0] is None:
        raise DataError(dataset.source, "no transactions to observe")
    windows = windows_for_span(row[0], row[1])
    if windows is None:
        raise DataError(
            dataset.source,
            "cannot infer windows: the data spans too little time, or ends in the last "
            "minute of year 9999 (pass --baseline and --current)",
        )
    return windows


def resolve_windows(
    dataset: Dataset, baseline: TimeWindow | None, current: TimeWindow | None
) -> tuple[TimeWindow, TimeWindow]:
    """Caller's windows first, then the scenario's, then inferred ones."""
    scenario = dataset.scenario
    if baseline is None and scenario is not None:
        baseline = scenario.baseline_window
    if current is None and scenario is not None:
        current = scenario.current_window
    if baseline is None or current is None:
        inferred_baseline, inferred_current = infer_windows(dataset)
        baseline = baseline or inferred_baseline
        current = current or inferred_current
    return baseline, current


def _code_shifts(
    before: WindowStats, after: WindowStats, baseline: dict[str, int], current: dict[str, int]
) -> list[CodeShift]:
    shifts = []
    for code in set(baseline) | set(current):
        b, c = baseline.get(code, 0), current.get(code, 0)
        b_share = b / before.attempts if before.attempts else 0.0
        c_share = c / after.attempts if after.attempts else 0.0
        if c_share - b_share >= CODE_SHIFT_MIN:
            shifts.append(
                CodeShift(
                    code=code,
                    baseline_share=round(b_share, 6),
                    current_share=round(c_share, 6),
                    baseline_count=b,
                    current_count=c,
                )
            )
    shifts.sort(key=lambda s: (-(s.current_share - s.baseline_share), s.code))
    return shifts[:6]


def _evidence(dataset: Dataset, table: SegmentTable, keys: list[LeafKey]) -> list[SegmentEvidence]:
    mixes = code_mix(dataset.conn, [dict(k) for k in keys], cube=CUBE)
    out = []
    for key, mix in zip(keys, mixes, strict=True):
        m = table.get(key)
        out.append(
            SegmentEvidence(
                segment=dict(key),
                baseline=WindowSummary.of(m.baseline),
                current=WindowSummary.of(m.current),
                code_shifts=_code_shifts(m.baseline, m.current, mix.baseline, mix.current),
            )
        )
    return out


def _order(detections: list[Detection], root_keys: set[LeafKey]) -> list[Detection]:
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(
        detections,
        key=lambda d: (
            d.key not in root_keys,
            rank[d.severity],
            -abs(d.excess),
            len(d.key),
            d.metric,
            d.key,
        ),
    )


# What one slow attempt weighs against one lost approval when ranking incidents: a slow
# checkout hurts, but far less than a declined one.
SLOW_ATTEMPT_WEIGHT = 0.1
# An overlapping cause on another metric counts as a separate incident only when it is at
# least this large next to the cause it overlaps; smaller ones are that incident's echo.
SEPARATE_INCIDENT_SHARE = 0.25


def _disjoint(a: LeafKey, b: LeafKey) -> bool:
    """Two segments that share no traffic (they fix one dimension to different values)."""
    fixed = dict(a)
    return any(dim in fixed and fixed[dim] != value for dim, value in b)


def _nested(a: LeafKey, b: LeafKey) -> bool:
    """One segment contains the other."""
    return set(a) <= set(b) or set(b) <= set(a)


def _localize_all(
    dataset: Dataset, table: SegmentTable, result: DetectionResult, cfg: ObserveConfig
) -> list[RootCause]:
    """Root causes of every flagged metric, largest first by approvals lost.

    Each metric's localization already separates simultaneous incidents of that metric.
    Across metrics, the same incident shows up twice (an outage also slows its processor
    down; a slow route also fails a little more), so a cause on another metric is kept
    only when it is disjoint from the larger causes, or overlaps them without nesting
    and is large enough to be an incident of its own.
    """

    # Metrics often find the same cause (an outage fails and slows its processor): the
    # table without it is measured once and shared.
    remeasured: dict[frozenset[LeafKey], SegmentTable] = {}

    def remeasure(excluded: list[Segment]) -> SegmentTable:
        key = frozenset(key_of(s, table.dimensions) for s in excluded)
        if key not in remeasured:
            remeasured[key] = rollup(
                dataset.conn, table.dimensions, cfg.depth, table.baseline, table.current,
                cube=CUBE, exclude=excluded,
            )  # fmt: skip
        return remeasured[key]

    def weight(rc: RootCause) -> float:
        if rc.metric == "success_rate":
            return rc.excess
        if rc.metric == "volume":
            return rc.excess * table.get(rc.key).baseline.success_rate
        return rc.excess * SLOW_ATTEMPT_WEIGHT

    def separate(rc: RootCause, kept: RootCause) -> bool:
        if rc.metric == kept.metric or _disjoint(rc.key, kept.key):
            return True
        return not _nested(rc.key, kept.key) and weight(rc) >= SEPARATE_INCIDENT_SHARE * weight(
            kept
        )

    flagged = {d.metric for d in result.detections}
    found: list[RootCause] = []
    for model in count_models(table):
        if model.name in flagged:
            found += localize(table, model, cfg, result.cause_cutoff(model.name), remeasure)
    found.sort(key=lambda rc: -weight(rc))
    causes: list[RootCause] = []
    for rc in found:
        if all(separate(rc, kept) for kept in causes):
            causes.append(rc)
    return causes[: cfg.max_root_causes]


def observe(
    dataset: Dataset,
    cfg: ObserveConfig,
    *,
    baseline: TimeWindow | None = None,
    current: TimeWindow | None = None,
) -> Observation:
    """Segment metrics, anomaly detection and root-cause localization for two windows."""
    baseline, current = resolve_windows(dataset, baseline, current)
    dims = dataset.dimensions
    dataset.leaf_cube(baseline, current, cube=CUBE)
    table = rollup(dataset.conn, dims, cfg.depth, baseline, current, cube=CUBE)
    result = detect(table, cfg)
    root_causes = _localize_all(dataset, table, result, cfg) if result.detections else []
    root_keys = {rc.key for rc in root_causes}
    ordered = _order(result.detections, root_keys)
    kept = ordered[: cfg.max_anomalies]
    evidence_keys = list(dict.fromkeys([rc.key for rc in root_causes] + [d.key for d in kept]))
    evidence = _evidence(dataset, table, [*evidence_keys, ()])
    by_key = {key_of(e.segment, dims): e for e in evidence}
    anomalies = [
        AnomalyRecord(
            segment=d.segment,
            metric=d.metric,
            baseline=round(d.baseline, 6),
            current=round(d.current, 6),
            p_value=float(f"{d.p_value:.3g}"),
            severity=d.severity,
            baseline_attempts=d.baseline_attempts,
            current_attempts=d.current_attempts,
            excess=round(d.excess, 2),
            decline_codes=by_key[d.key].code_shifts,
            latency_p95_ms=(
                round(by_key[d.key].baseline.latency_p95, 1),
                round(by_key[d.key].current.latency_p95, 1),
            ),
        )
        for d in kept
    ]
    return Observation(
        baseline=baseline,
        current=current,
        dimensions=list(dims),
        anomalous=bool(result.detections),
        anomalies=anomalies,
        root_cause=[rc.segment for rc in root_causes],
        root_causes=[
            RootCauseDetail(
                segment=rc.segment,
                metric=rc.metric,
                effect=round(rc.effect, 6),
                excess=round(rc.excess, 2),
                explained_share=round(rc.explained_share, 4),
            )
            for rc in root_causes
        ],
        evidence=[by_key[rc.key] for rc in root_causes],
        overall=by_key[()],
        tests=result.tests,
    )
