"""observe: from loaded transactions to anomalies and their root cause.

Windows come from the caller, else from the scenario, else they are inferred (the last
hour against the hours before it; on data shorter than two hours, the last fifth against
the rest). This is the function the graph's observe node and the chat tools both call.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from tools import sql
from tools.config import ObserveConfig
from tools.contract import AnomalyRecord, CodeShift, Segment, TimeWindow, iso, utc
from tools.data import LEAF_CUBE, DataError, Dataset
from tools.detection import Detection, DetectionResult, detect, detect_deeper
from tools.metrics import (
    CodeMix,
    LeafKey,
    SegmentTable,
    WindowStats,
    approved_latency,
    code_mix,
    key_of,
    prepare_codes,
    rollup,
)
from tools.root_cause import RootCause, disjoint, localize, nested
from tools.windows import windows_for_span

CUBE = LEAF_CUBE
# Segments of up to this many dimensions are measured everywhere; deeper ones only inside
# a root cause, up to `ObserveConfig.depth` (root_cause: depth adapts).
FULL_DEPTH = 2
# A code "moved" when its share of attempts rose by at least this much.
CODE_SHIFT_MIN = 0.005


class WindowSummary(BaseModel):
    """The figures the reasoner reads about one segment in one window."""

    model_config = ConfigDict(frozen=True)

    attempts: int
    success_rate: float
    error_rate: float
    # Errors and timeouts (status error, or a gateway code on a decline).
    gateway_error_rate: float = 0.0
    technical_share: float
    soft_share: float
    hard_share: float
    challenge_rate: float
    three_ds_failure_rate: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    # p95 latency of approved attempts only: slow successes, not timeouts (0: unknown).
    approved_latency_p95: float = 0.0

    @classmethod
    def of(cls, w: WindowStats, approved_p95: float) -> WindowSummary:
        """Summarise one window's counts."""
        return cls(
            attempts=w.attempts,
            success_rate=round(w.success_rate, 6),
            error_rate=round(w.error_rate, 6),
            gateway_error_rate=round(w.gateway_errors / w.attempts if w.attempts else 0.0, 6),
            technical_share=round(w.technical_share, 6),
            soft_share=round(w.soft_share, 6),
            hard_share=round(w.hard_share, 6),
            challenge_rate=round(w.challenge_rate, 6),
            three_ds_failure_rate=round(w.three_ds_failure_rate, 6),
            latency_p50=round(w.latency_p50, 1),
            latency_p95=round(w.latency_p95, 1),
            latency_p99=round(w.latency_p99, 1),
            approved_latency_p95=round(approved_p95, 1),
        )


class SegmentEvidence(BaseModel):
    """What moved in one segment: rates, codes, latency and 3DS, in both windows.

    `signals` are the signals flagged on the segment itself, inside it or around it (a
    segment containing it or contained in it), each as its label ("decline_code 1A").
    """

    model_config = ConfigDict(frozen=True)

    segment: Segment
    baseline: WindowSummary
    current: WindowSummary
    code_shifts: list[CodeShift]
    signals: list[str] = []


class RootCauseDetail(BaseModel):
    """A root-cause segment with the signal it explains and how much of the change.

    `alternatives` are narrower segments the data fits as well (the rest of this one is
    too small to call spared or hit); `mix_shift` says the segment's share of traffic
    grew while no rate dropped.
    """

    segment: Segment
    metric: str
    detail: str | None = None
    effect: float
    excess: float
    explained_share: float
    alternatives: list[Segment] = []
    mix_shift: bool = False


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
    # Evidence of the primary root cause's alternatives, in their order.
    alternatives: list[SegmentEvidence] = []
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
        row = dataset.conn.execute(sql.ts_range(dataset.table)).fetchone()
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


def _span(window: TimeWindow) -> str:
    return f"{iso(window.start)}/{iso(window.end)}"


def resolve_windows(
    dataset: Dataset, baseline: TimeWindow | None, current: TimeWindow | None
) -> tuple[TimeWindow, TimeWindow]:
    """Caller's windows first, then the scenario's, then inferred ones.

    Raises DataError when the current window starts before the baseline ends: reversed or
    overlapping windows compare nothing meaningful.
    """
    scenario = dataset.scenario
    if baseline is None and scenario is not None:
        baseline = scenario.baseline_window
    if current is None and scenario is not None:
        current = scenario.current_window
    if baseline is None or current is None:
        inferred_baseline, inferred_current = infer_windows(dataset)
        baseline = baseline or inferred_baseline
        current = current or inferred_current
    if current.start < baseline.end:
        raise DataError(
            dataset.source,
            f"the current window {_span(current)} starts before the baseline window "
            f"{_span(baseline)} ends; the current window must come after the baseline",
        )
    return baseline, current


def _require_transactions(dataset: Dataset, table: SegmentTable) -> None:
    """Raise DataError when a window holds no transactions: there is nothing to compare,
    and "no anomaly" would be a claim made from nothing."""
    for name, window, stats in (
        ("baseline", table.baseline, table.total.baseline),
        ("current", table.current, table.total.current),
    ):
        if stats.attempts == 0:
            raise DataError(
                dataset.source,
                f"the {name} window {_span(window)} holds no transactions; nothing can be tested",
            )


def code_shares(before: WindowStats, after: WindowStats, mix: CodeMix) -> list[CodeShift]:
    """Every failure code of a segment with its share of attempts in both windows.

    Most current failures first (then code). `before` and `after` are the segment's
    window counts, `mix` its failures by code (`code_mix`).
    """
    shares = []
    for code in set(mix.baseline) | set(mix.current):
        b, c = mix.baseline.get(code, 0), mix.current.get(code, 0)
        shares.append(
            CodeShift(
                code=code,
                baseline_share=round(b / before.attempts if before.attempts else 0.0, 6),
                current_share=round(c / after.attempts if after.attempts else 0.0, 6),
                baseline_count=b,
                current_count=c,
            )
        )
    shares.sort(key=lambda s: (-s.current_count, s.code))
    return shares


def _code_shifts(before: WindowStats, after: WindowStats, mix: CodeMix) -> list[CodeShift]:
    """The codes whose share rose by at least CODE_SHIFT_MIN, largest rise first."""
    shifts = [
        s
        for s in code_shares(before, after, mix)
        if s.current_share - s.baseline_share >= CODE_SHIFT_MIN
    ]
    shifts.sort(key=lambda s: (-(s.current_share - s.baseline_share), s.code))
    return shifts[:6]


def _within(
    dataset: Dataset,
    table: SegmentTable,
    key: LeafKey,
    sets: list[tuple[str, ...]],
    excluded: list[Segment] | None = None,
) -> SegmentTable:
    """Segments of `sets` (each holding `key`'s dimensions), measured over `key`'s traffic
    only, with `excluded` traffic removed."""
    return rollup(
        dataset.conn, table.dimensions, max(len(s) for s in sets), table.baseline,
        table.current, cube=CUBE, codes=table.codes, within=dict(key), sets=sets,
        exclude=excluded or [],
    )  # fmt: skip


def _one_deeper(
    dataset: Dataset, table: SegmentTable, key: LeafKey, excluded: list[Segment] | None = None
) -> SegmentTable:
    """The segments one dimension inside `key`."""
    fixed = [d for d, _ in key]
    sets = [(*fixed, d) for d in table.dimensions if d not in fixed]
    return _within(dataset, table, key, sets, excluded)


def _screen_deeper(
    dataset: Dataset, table: SegmentTable, screened: tuple[LeafKey, ...]
) -> SegmentTable:
    """`table` plus the segments one dimension inside each screened one, and the size of
    that whole deeper level."""
    segments = dict(table.segments)
    for key in screened:
        segments.update(_one_deeper(dataset, table, key).segments)
    counts = {d: len(v) for d, v in table.values().items()}
    space = sum(
        math.prod(counts.get(d, 1) for d in dims)
        for dims in itertools.combinations(table.dimensions, table.depth + 1)
    )
    return replace(table, segments=segments, deep_space=space)


def _with_deep(dataset: Dataset, table: SegmentTable, keys: list[LeafKey]) -> SegmentTable:
    """`table` plus the segments of `keys` deeper than it measures (deep root causes)."""
    segments = dict(table.segments)
    for key in keys:
        if key not in segments:
            segments.update(_within(dataset, table, key, [tuple(d for d, _ in key)]).segments)
    return replace(table, segments=segments)


def _evidence(
    dataset: Dataset, table: SegmentTable, keys: list[LeafKey], detections: list[Detection]
) -> list[SegmentEvidence]:
    segments = [dict(k) for k in keys]
    mixes = code_mix(dataset.conn, segments, cube=CUBE)
    latencies = approved_latency(dataset.conn, segments, cube=CUBE)
    out = []
    for key, mix, (before_p95, after_p95) in zip(keys, mixes, latencies, strict=True):
        m = table.get(key)
        flagged = dict.fromkeys(
            d.metric if d.detail is None else f"{d.metric} {d.detail}"
            for d in detections
            if nested(d.key, key)
        )
        out.append(
            SegmentEvidence(
                segment=dict(key),
                baseline=WindowSummary.of(m.baseline, before_p95),
                current=WindowSummary.of(m.current, after_p95),
                code_shifts=_code_shifts(m.baseline, m.current, mix),
                signals=list(flagged) if key else [],
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


def _localize_all(
    dataset: Dataset, table: SegmentTable, result: DetectionResult, cfg: ObserveConfig
) -> list[RootCause]:
    """Root causes of every flagged signal, largest first by approvals lost.

    Each signal's localization already separates simultaneous incidents of that signal.
    Across signals, the same incident shows up several times (an outage also raises its
    processor's errors and slows it down; an ACS failure shows in the 3DS failure rate,
    the 1A code and the success rate), so a cause on another signal is kept only when it
    is disjoint from the larger causes, or overlaps them without nesting and still shows
    (bad on its own signal) with their traffic taken out.
    """
    tables: dict[tuple[str, ...], SegmentTable] = {}

    def remeasure(excluded: list[Segment]) -> SegmentTable:
        # Causes found on several signals exclude the same traffic: measure it once.
        marker = tuple(sorted(repr(sorted(s.items())) for s in excluded))
        if marker not in tables:
            tables[marker] = rollup(
                dataset.conn, table.dimensions, table.depth, table.baseline, table.current,
                cube=CUBE, exclude=excluded, codes=table.codes,
            )  # fmt: skip
        return tables[marker]

    def deeper(key: LeafKey, excluded: list[Segment]) -> SegmentTable:
        return _one_deeper(dataset, table, key, excluded)

    detectors = {(s.name, s.detail): s for s in result.signals}

    def separate(rc: RootCause, kept: RootCause) -> bool:
        if (rc.metric, rc.detail) == (kept.metric, kept.detail) or disjoint(rc.key, kept.key):
            return True
        if nested(rc.key, kept.key):
            return False
        # Overlapping: a separate incident only if it still shows outside the kept cause.
        signal = detectors[(rc.metric, rc.detail)]
        both = key_of({**kept.segment, **rc.segment}, table.dimensions)
        inside = signal.counts(_with_deep(dataset, table, [both]).get(both))
        outside = signal.counts(table.get(rc.key)).minus(inside)
        return (
            signal.enough_sample(outside)
            and signal.material(outside)
            and signal.p_value(outside) <= result.cause_cutoff(rc.metric)
        )

    found: list[RootCause] = []
    for signal in result.flagged():
        flagged = [
            d.key for d in result.detections if (d.metric, d.detail) == (signal.name, signal.detail)
        ]
        # A signal whose every flag contains or lies in a cause already found only echoes
        # it (its cause would be dropped below): no need to localize it.
        if found and all(any(nested(k, rc.key) for rc in found) for k in flagged):
            continue
        found += localize(
            table, signal, cfg, result.cause_cutoff(signal.name), remeasure,
            deeper=deeper, flagged=flagged,
        )  # fmt: skip
    found.sort(key=lambda rc: -rc.lost_approvals)
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
    codes = prepare_codes(dataset.conn, dims, cube=CUBE)
    depth = min(cfg.depth, FULL_DEPTH)
    table = rollup(dataset.conn, dims, depth, baseline, current, cube=CUBE, codes=codes)
    _require_transactions(dataset, table)
    result = detect(table, cfg)
    if result.screened and cfg.depth > depth:
        table = _screen_deeper(dataset, table, result.screened)
        deep = [k for k in table.segments if len(k) > depth]
        result = detect_deeper(result, table, deep)
    root_causes = _localize_all(dataset, table, result, cfg) if result.detections else []
    root_keys = {rc.key for rc in root_causes}
    ordered = _order(result.detections, root_keys)
    kept = ordered[: cfg.max_anomalies]
    alternatives = list(root_causes[0].alternatives) if root_causes else []
    evidence_keys = list(
        dict.fromkeys([rc.key for rc in root_causes] + alternatives + [d.key for d in kept])
    )
    measured = _with_deep(dataset, table, evidence_keys)
    evidence = _evidence(dataset, measured, [*evidence_keys, ()], result.detections)
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
            detail=d.detail,
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
                detail=rc.detail,
                effect=round(rc.effect, 6),
                excess=round(rc.excess, 2),
                explained_share=round(rc.explained_share, 4),
                alternatives=[dict(k) for k in rc.alternatives],
                mix_shift=rc.mix_shift,
            )
            for rc in root_causes
        ],
        evidence=[by_key[rc.key] for rc in root_causes],
        alternatives=[by_key[k] for k in alternatives],
        overall=by_key[()],
        tests=result.tests,
    )
