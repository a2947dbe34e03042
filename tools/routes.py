"""Read-only facts about one segment and its routes, for the guard and the simulator.

`snapshot` answers what guard rules and simulated remedies need to know about a
decision's target segment: its success rate in both windows, its failures by decline
code, and how every processor performs on the same traffic. It reads the leaf cube of the
windows (the one observe built) when the segment's dimensions are the cube's, and the
transactions themselves otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from tools import sql
from tools.contract import Segment, TimeWindow, utc
from tools.data import DataError, Dataset
from tools.decline_codes import canonical_code
from tools.metrics import counter_column


def _rate(approved: int, attempts: int) -> float:
    return approved / attempts if attempts else 0.0


@dataclass(frozen=True)
class RouteStats:
    """One processor on the target segment: current and baseline counts."""

    processor: str
    attempts: int
    approved: int
    errors: int
    baseline_attempts: int
    baseline_approved: int

    @property
    def success_rate(self) -> float:
        """Approved / attempts in the current window (0.0 when no attempts)."""
        return _rate(self.approved, self.attempts)

    @property
    def baseline_success_rate(self) -> float:
        """Approved / attempts in the baseline window (0.0 when no attempts)."""
        return _rate(self.baseline_approved, self.baseline_attempts)


@dataclass(frozen=True)
class SegmentSnapshot:
    """A decision's target segment in the baseline and current windows.

    `routes` is computed on the segment without its processor dimension, so that a
    segment pinned to processor A can be compared with every other processor on the same
    traffic (same network, country, currency...).
    """

    segment: Segment
    attempts: int
    approved: int
    baseline_attempts: int
    baseline_approved: int
    decline_codes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    three_ds_failed: int = 0
    total_attempts: int = 0
    routes: Mapping[str, RouteStats] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def success_rate(self) -> float:
        """Current-window success rate of the segment (0.0 when no attempts)."""
        return _rate(self.approved, self.attempts)

    @property
    def baseline_success_rate(self) -> float:
        """Baseline-window success rate of the segment (0.0 when no attempts)."""
        return _rate(self.baseline_approved, self.baseline_attempts)

    @property
    def failures(self) -> int:
        """Current-window attempts that were not approved."""
        return self.attempts - self.approved


def _by_canonical_code(counts: Mapping[Any, Any]) -> dict[str, int]:
    """Failures by decline code in its canonical spelling (`4` and `04` are one code), so
    guard and simulator compare the data's codes by meaning."""
    out: dict[str, int] = {}
    for code, n in counts.items():
        key = canonical_code(str(code))
        out[key] = out.get(key, 0) + int(n)
    return dict(sorted(out.items()))


def _naive(ts: datetime) -> datetime:
    # The table stores naive UTC timestamps; an aware bound would be compared in local time.
    return utc(ts).replace(tzinfo=None)


def snapshot(
    dataset: Dataset, baseline: TimeWindow, current: TimeWindow, segment: Segment
) -> SegmentSnapshot:
    """Counts for `segment` and each processor on it, over the baseline and current windows.

    Raises DataError when the segment names a dimension the transactions do not have.
    """
    columns = set(dataset.columns or dataset.conn.table(dataset.table).columns)
    unknown = sorted(set(segment) - columns)
    if unknown:
        raise DataError(dataset.source, "segment names an unknown dimension", column=unknown[0])
    dims = set(dataset.dimensions)
    # The cube keeps each row in one window; that is the transactions' answer only when
    # the baseline ends before the current window starts.
    if set(segment) <= dims and "processor" in dims and baseline.end <= current.start:
        routes, detail, codes = _from_cube(dataset, baseline, current, segment)
    else:
        routes, detail, codes = _from_rows(dataset, baseline, current, segment)
    total_attempts, three_ds_failed = detail

    # The segment itself is one route (pinned processor) or the sum of all of them.
    pinned = segment.get("processor")
    mine = [s for p, s in routes.items() if pinned is None or p == pinned]
    return SegmentSnapshot(
        segment=dict(segment),
        attempts=sum(s.attempts for s in mine),
        approved=sum(s.approved for s in mine),
        baseline_attempts=sum(s.baseline_attempts for s in mine),
        baseline_approved=sum(s.baseline_approved for s in mine),
        decline_codes=MappingProxyType(_by_canonical_code(codes or {})),
        three_ds_failed=int(three_ds_failed),
        total_attempts=int(total_attempts),
        routes=MappingProxyType(routes),
    )


_Answer = tuple[dict[str, RouteStats], tuple[int, int], dict[str, int]]


def _routes(rows: list[tuple[Any, ...]]) -> dict[str, RouteStats]:
    return {
        str(r[0]): RouteStats(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]))
        for r in rows
    }


def _from_cube(
    dataset: Dataset, baseline: TimeWindow, current: TimeWindow, segment: Segment
) -> _Answer:
    cube = dataset.leaf_cube(baseline, current)
    counters = {
        name: counter_column(name, current=True)
        for name in ("attempts", "approved", "errors", "three_ds_failed")
    }
    counters |= {
        f"baseline_{name}": counter_column(name, current=False) for name in ("attempts", "approved")
    }
    counts = sql.ident(f"{cube.name}_counts")
    peers = {k: v for k, v in segment.items() if k != "processor"}
    where, params = sql.segment_filter(peers)
    rows = dataset.conn.execute(
        sql.ROUTE_STATS_FROM_CUBE.format(counts=counts, where=where, **counters), params
    ).fetchall()
    where, params = sql.segment_filter(segment)
    detail = dataset.conn.execute(
        sql.SEGMENT_DETAIL_FROM_CUBE.format(counts=counts, where=where, **counters), params
    ).fetchone()
    codes = dataset.conn.execute(
        sql.SEGMENT_CODES_FROM_CUBE.format(cube=sql.ident(cube.name), where=where), params
    ).fetchall()
    return (
        _routes(rows),
        (int(detail[0]), int(detail[1])) if detail else (0, 0),
        {str(code): int(n) for code, n in codes},
    )


def _from_rows(
    dataset: Dataset, baseline: TimeWindow, current: TimeWindow, segment: Segment
) -> _Answer:
    table = sql.ident(dataset.table)
    bounds: dict[str, Any] = {
        "baseline_start": _naive(baseline.start),
        "baseline_end": _naive(baseline.end),
        "current_start": _naive(current.start),
        "current_end": _naive(current.end),
    }
    peers = {k: v for k, v in segment.items() if k != "processor"}
    where, params = sql.segment_filter(peers)
    rows = dataset.conn.execute(
        sql.ROUTE_STATS.format(table=table, where=where), {**bounds, **params}
    ).fetchall()
    where, params = sql.segment_filter(segment)
    current_bounds = {k: v for k, v in bounds.items() if k.startswith("current_")}
    detail = dataset.conn.execute(
        sql.SEGMENT_DETAIL.format(table=table, where=where), {**current_bounds, **params}
    ).fetchone()
    total_attempts, three_ds_failed, codes = detail if detail is not None else (0, 0, None)
    return (
        _routes(rows),
        (int(total_attempts), int(three_ds_failed)),
        {str(k): int(v) for k, v in (codes or {}).items()},
    )
