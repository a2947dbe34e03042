"""Segment metrics for a baseline and a current window, computed in DuckDB.

One pass over the transactions builds a *leaf cube*: counts per (time bucket, every
dimension, status, decline code, latency bucket), with latency kept as a bucket so that
percentiles roll up. The cube of two windows is then a sum of whole buckets, collapsed to
the window counters of each leaf (one value of every dimension), and every segment of up
to `depth` dimensions is one GROUP BY over that small table. Failures, attempts and slow
attempts are additive, which is what root-cause localization needs (it subtracts one
segment from another).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from tools import sql
from tools.contract import Segment, TimeWindow
from tools.decline_codes import (
    AUTHENTICATION_CODES,
    FRAUD_CODES,
    SOFT_CODES,
    TECHNICAL_CODES,
)
from tools.stats import quantile_from_cumulative

# Latency is kept as a bucket index in the leaf cube: bucket k >= 1 starts at
# 2^((k + 10) / 2) ms, i.e. edges a factor sqrt(2) apart from 45 ms to about 33 s (bucket 0
# holds everything faster). Counts at or above each edge roll up across segments, which
# percentiles do not, and a bucket in the group key costs less than a count per edge.
_LATENCY_BUCKETS = 21
LATENCY_EDGES_MS: tuple[float, ...] = tuple(
    round(2 ** ((k + 10) / 2), 1) for k in range(1, _LATENCY_BUCKETS)
)
_LATENCY_BUCKET_SQL = (
    f"least({_LATENCY_BUCKETS - 1}, greatest(0, "
    "floor(log2(greatest(latency_ms, 1)) * 2)::INTEGER - 10))::UTINYINT"
)

# Window counters: (name, SQL predicate on a leaf-cube row). Order is the column order.
_COUNTERS: tuple[str, ...] = (
    "attempts",
    "approved",
    "declined",
    "errors",
    "technical",
    "soft",
    "hard",
    "fraud",
    "authentication",
    "insufficient_funds",
    "three_ds_attempts",
    "challenged",
    "three_ds_failed",
    "retries",
)
_N_COUNTERS = len(_COUNTERS)
_N_EDGES = len(LATENCY_EDGES_MS)

LeafKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WindowStats:
    """Counts of one segment in one window; every field is additive across segments."""

    attempts: int = 0
    approved: int = 0
    declined: int = 0
    errors: int = 0
    technical: int = 0
    soft: int = 0
    hard: int = 0
    fraud: int = 0
    authentication: int = 0
    insufficient_funds: int = 0
    three_ds_attempts: int = 0
    challenged: int = 0
    three_ds_failed: int = 0
    retries: int = 0
    latency_at_least: tuple[int, ...] = field(default=(0,) * _N_EDGES)

    @classmethod
    def from_values(cls, values: Sequence[int | float | None]) -> WindowStats:
        """Build from the counter columns followed by the latency columns."""
        v = [int(x or 0) for x in values]
        # Spelled out (in _COUNTERS order): a rollup builds thousands of these.
        return cls(
            attempts=v[0],
            approved=v[1],
            declined=v[2],
            errors=v[3],
            technical=v[4],
            soft=v[5],
            hard=v[6],
            fraud=v[7],
            authentication=v[8],
            insufficient_funds=v[9],
            three_ds_attempts=v[10],
            challenged=v[11],
            three_ds_failed=v[12],
            retries=v[13],
            latency_at_least=tuple(v[_N_COUNTERS:]),
        )

    def minus(self, other: WindowStats) -> WindowStats:
        """Counts of this segment with `other` (a part of it) taken out."""
        fields: dict[str, Any] = {
            name: getattr(self, name) - getattr(other, name) for name in _COUNTERS
        }
        lat = tuple(
            a - b for a, b in zip(self.latency_at_least, other.latency_at_least, strict=True)
        )
        return WindowStats(**fields, latency_at_least=lat)

    @property
    def failures(self) -> int:
        """Attempts that were not approved (declines and errors)."""
        return self.attempts - self.approved

    def _share(self, count: int) -> float:
        return count / self.attempts if self.attempts else 0.0

    @property
    def success_rate(self) -> float:
        """Approved attempts over attempts."""
        return self._share(self.approved)

    @property
    def error_rate(self) -> float:
        """Technical failures (status `error`) over attempts."""
        return self._share(self.errors)

    @property
    def decline_rate(self) -> float:
        """Declines over attempts."""
        return self._share(self.declined)

    @property
    def soft_share(self) -> float:
        """Share of failures that are soft declines (retry later)."""
        return self.soft / self.failures if self.failures else 0.0

    @property
    def hard_share(self) -> float:
        """Share of failures that are hard declines (never retry as is)."""
        return self.hard / self.failures if self.failures else 0.0

    @property
    def technical_share(self) -> float:
        """Share of failures that are technical (errors, timeouts, 91/96)."""
        return self.technical / self.failures if self.failures else 0.0

    @property
    def challenge_rate(self) -> float:
        """Share of 3DS attempts that were challenged (challenge or failed)."""
        return self.challenged / self.three_ds_attempts if self.three_ds_attempts else 0.0

    @property
    def three_ds_failure_rate(self) -> float:
        """Share of 3DS attempts whose authentication failed."""
        return self.three_ds_failed / self.three_ds_attempts if self.three_ds_attempts else 0.0

    def latency_quantile(self, q: float) -> float:
        """Latency quantile in ms, interpolated from the rollable histogram."""
        return quantile_from_cumulative(LATENCY_EDGES_MS, self.latency_at_least, self.attempts, q)

    @property
    def latency_p50(self) -> float:
        """Median latency, ms."""
        return self.latency_quantile(0.50)

    @property
    def latency_p95(self) -> float:
        """95th percentile latency, ms."""
        return self.latency_quantile(0.95)

    @property
    def latency_p99(self) -> float:
        """99th percentile latency, ms."""
        return self.latency_quantile(0.99)


@dataclass(frozen=True)
class SegmentMetrics:
    """One segment's counts in the baseline and the current window."""

    key: LeafKey
    baseline: WindowStats
    current: WindowStats

    @property
    def segment(self) -> Segment:
        """The segment in CONTRACT form."""
        return dict(self.key)

    @property
    def depth(self) -> int:
        """Number of dimensions fixed by the segment."""
        return len(self.key)


@dataclass
class SegmentTable:
    """Every segment of up to `depth` dimensions, keyed by (dimension, value) pairs."""

    dimensions: list[str]
    depth: int
    baseline: TimeWindow
    current: TimeWindow
    segments: dict[LeafKey, SegmentMetrics]

    @property
    def total(self) -> SegmentMetrics:
        """All traffic."""
        return self.segments.get(()) or SegmentMetrics((), WindowStats(), WindowStats())

    @property
    def duration_ratio(self) -> float:
        """Current window length over baseline window length."""
        return self.current.minutes / self.baseline.minutes

    def get(self, key: LeafKey) -> SegmentMetrics:
        """Metrics of a segment; an unseen segment has zero counts."""
        return self.segments.get(key) or SegmentMetrics(key, WindowStats(), WindowStats())


def key_of(segment: Segment, dimensions: Sequence[str]) -> LeafKey:
    """The table key of a CONTRACT segment: its pairs in dimension order."""
    order = {d: i for i, d in enumerate(dimensions)}
    return tuple(sorted(segment.items(), key=lambda kv: order.get(kv[0], len(order))))


def naive_utc(ts: datetime) -> datetime:
    """A UTC timestamp without tzinfo, as the transactions table stores them."""
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def _in_list(codes: Iterable[str]) -> str:
    # Codes are our own constants, never user input; quoting is still done properly.
    return ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(codes))


# The leaf cube's key and counts: one definition for every pass that builds one (the
# loader's single pass over a file, `build_leaf_cube` over a table). A leaf is one value of
# every dimension, one status, one decline code (none when approved) and one latency bucket.
LEAF_CODE_SQL = "CASE WHEN status = 'approved' THEN '' ELSE decline_code END"
LEAF_COUNTS: tuple[tuple[str, str], ...] = (
    ("n", "count(*)"),
    ("tds", "count(*) FILTER (WHERE three_ds IN ('frictionless', 'challenge', 'failed'))"),
    ("tds_challenged", "count(*) FILTER (WHERE three_ds IN ('challenge', 'failed'))"),
    ("tds_failed", "count(*) FILTER (WHERE three_ds = 'failed')"),
    ("retries", "count(*) FILTER (WHERE is_retry)"),
)


def leaf_select(dimensions: Sequence[str]) -> str:
    """The leaf key columns and counts of a GROUP BY ALL over transactions-shaped rows."""
    dims = ", ".join(sql.ident(d) for d in dimensions)
    counts = ", ".join(f"{expr} AS {name}" for name, expr in LEAF_COUNTS)
    return (
        f"{dims}, status, {LEAF_CODE_SQL} AS code, {_LATENCY_BUCKET_SQL} AS latency_bucket, "
        f"{counts}"
    )


@dataclass(frozen=True)
class TimeBuckets:
    """Cut points that split time into buckets, so a cube per bucket can serve windows.

    Bucket 0 holds everything before the first cut, bucket i the span [cuts[i-1], cuts[i]),
    the last one everything from the last cut on. Counts are additive, so the cube of any
    window whose bounds are cuts is a sum of whole buckets.
    """

    cuts: tuple[datetime, ...] = ()

    @classmethod
    def of(cls, *windows: TimeWindow) -> TimeBuckets:
        """The buckets cut at the bounds of `windows` (naive UTC, like the table's `ts`)."""
        bounds = {naive_utc(t) for w in windows for t in (w.start, w.end)}
        return cls(tuple(sorted(bounds)))

    def sql(self) -> tuple[str, dict[str, datetime]]:
        """The bucket of a row as SQL over its `ts` (UTINYINT), and the bound parameters."""
        if not self.cuts:
            return "0::UTINYINT", {}
        terms = " + ".join(f"(ts >= $cut{i})::UTINYINT" for i in range(len(self.cuts)))
        return f"({terms})", {f"cut{i}": cut for i, cut in enumerate(self.cuts)}

    def serves(self, *windows: TimeWindow) -> bool:
        """Whether every bound of `windows` is a cut, so whole buckets make each window."""
        return all(naive_utc(t) in self.cuts for w in windows for t in (w.start, w.end))

    def of_windows(self, baseline: TimeWindow, current: TimeWindow) -> tuple[list[int], list[int]]:
        """The buckets inside either window, and those of them counted as current.

        As in `build_leaf_cube`: a row inside either window is current when it is not
        earlier than the current window's start.
        """
        cur_start = naive_utc(current.start)
        inside, now = [], []
        for i in range(1, len(self.cuts)):
            start, end = self.cuts[i - 1], self.cuts[i]
            if any(
                naive_utc(w.start) <= start and end <= naive_utc(w.end) for w in (baseline, current)
            ):
                inside.append(i)
                if start >= cur_start:
                    now.append(i)
        return inside, now


@dataclass(frozen=True)
class LeafCube:
    """The leaf cube of one pair of windows, as two tables in a DuckDB connection.

    `name`: counts `n` per (is_current, every dimension, status, code), which `code_mix`
    reads; `name_counts`: the window counters of `WindowStats` per (is_current, leaf),
    which every rollup sums.
    """

    name: str
    dimensions: tuple[str, ...]
    baseline: TimeWindow
    current: TimeWindow

    def serves(self, dimensions: Sequence[str], baseline: TimeWindow, current: TimeWindow) -> bool:
        """Whether this cube holds exactly these dimensions and windows."""
        return (
            tuple(dimensions) == self.dimensions
            and baseline == self.baseline
            and current == self.current
        )


def build_leaf_cube(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    dimensions: Sequence[str],
    baseline: TimeWindow,
    current: TimeWindow,
    *,
    cube: str = "observe_leaf",
) -> LeafCube:
    """One scan of `table` (transactions-shaped): the leaf cube of two windows."""
    buckets = TimeBuckets.of(baseline, current)
    bucket, params = buckets.sql()
    leaves = f"{cube}_leaves"
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {leaves} AS
        SELECT {bucket} AS bucket, {leaf_select(dimensions)}
        FROM {sql.ident(table)}
        WHERE (ts >= $base_start AND ts < $base_end) OR (ts >= $cur_start AND ts < $cur_end)
        GROUP BY ALL
        """,
        {
            **params,
            "base_start": naive_utc(baseline.start),
            "base_end": naive_utc(baseline.end),
            "cur_start": naive_utc(current.start),
            "cur_end": naive_utc(current.end),
        },
    )
    collapse_leaves(conn, leaves, dimensions, f"{cube}_buckets")
    conn.execute(f"DROP TABLE {leaves}")
    return window_cube(conn, f"{cube}_buckets", buckets, dimensions, baseline, current, cube=cube)


def collapse_leaves(
    conn: duckdb.DuckDBPyConnection, leaves: str, dimensions: Sequence[str], target: str
) -> None:
    """The bucket cube `target` from a table of leaves (`bucket` + `leaf_select` columns).

    `target_counts`: the window counters (v0...) per (bucket, leaf), status, code and
    latency collapsed once, so that windows and rollups are plain sums afterwards;
    `target_codes`: attempts `n` per (bucket, leaf, status, code), which `code_mix` reads.
    Both are additive across buckets and across sets of rows.
    """
    dims = ", ".join(sql.ident(d) for d in dimensions)
    counters = ", ".join(f"({expr})::BIGINT AS v{i}" for i, expr in enumerate(_counter_sql()))
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {target}_counts AS
        SELECT bucket, {dims}, {counters} FROM {leaves} GROUP BY ALL"""
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {target}_codes AS
        SELECT bucket, {dims}, status, code, sum(n)::BIGINT AS n FROM {leaves} GROUP BY ALL"""
    )


def merge_bucket_cubes(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, str]],
    dimensions: Sequence[str],
    target: str,
    *,
    summed: bool,
) -> None:
    """The bucket cube `target` of several disjoint sets of rows, from their cubes.

    Each part is a pair of relations (its counts, its codes: see `collapse_leaves`), such
    as the tables of a bucket cube or the Parquet files the scan cache keeps, all cut at
    the same time buckets. `summed` adds up each leaf's rows; without, the parts are only
    put together, and a leaf may have a row in each (`window_cube(..., repeated=True)`).
    """
    dims = ", ".join(sql.ident(d) for d in dimensions)
    width = _N_COUNTERS + _N_EDGES
    sums = ", ".join(f"sum(v{i})::BIGINT AS v{i}" for i in range(width))
    merged = {
        "counts": (f"bucket, {dims}", sums, [counts for counts, _ in parts]),
        "codes": (f"bucket, {dims}, status, code", "sum(n)::BIGINT AS n", [c for _, c in parts]),
    }
    for suffix, (keys, values, relations) in merged.items():
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM {r}" for r in relations)
        query = f"SELECT {keys}, {values} FROM ({union}) GROUP BY ALL" if summed else union
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {target}_{suffix}_merged AS {query}")
    for suffix in merged:
        conn.execute(f"DROP TABLE IF EXISTS {target}_{suffix}")
        conn.execute(f"ALTER TABLE {target}_{suffix}_merged RENAME TO {target}_{suffix}")


def window_cube(
    conn: duckdb.DuckDBPyConnection,
    bucket_cube: str,
    buckets: TimeBuckets,
    dimensions: Sequence[str],
    baseline: TimeWindow,
    current: TimeWindow,
    *,
    cube: str = "observe_leaf",
    repeated: bool = False,
) -> LeafCube:
    """The leaf cube of two windows, summed from a bucket cube (no pass over the rows).

    `bucket_cube` names the tables made by `collapse_leaves` (or `merge_bucket_cubes`:
    `repeated` when a leaf may have several rows in a bucket); `buckets` must serve both
    windows. A row in either window is current when it is not earlier than the current
    window's start.
    """
    if not buckets.serves(baseline, current):
        raise ValueError("the time buckets do not serve these windows")
    inside, now = buckets.of_windows(baseline, current)
    dims = ", ".join(sql.ident(d) for d in dimensions)
    is_current = f"bucket IN ({', '.join(map(str, now))})" if now else "false"
    scope = f"bucket IN ({', '.join(map(str, inside))})" if inside else "false"
    # A window made of several buckets is summed per leaf; with one bucket per window
    # (the usual cut) each leaf's row is taken as it is.
    summed = repeated or len(now) > 1 or len(inside) - len(now) > 1
    width = _N_COUNTERS + _N_EDGES
    values = ", ".join(f"sum(v{i})::BIGINT AS v{i}" if summed else f"v{i}" for i in range(width))
    n = "sum(n)::BIGINT AS n" if summed else "n"
    group = " GROUP BY ALL" if summed else ""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {cube} AS
        SELECT {is_current} AS is_current, {dims}, status, code, {n}
        FROM {bucket_cube}_codes WHERE {scope}{group}"""
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {cube}_counts AS
        SELECT {is_current} AS is_current, {dims}, {values}
        FROM {bucket_cube}_counts WHERE {scope}{group}"""
    )
    return LeafCube(cube, tuple(dimensions), baseline, current)


def counter_column(name: str) -> str:
    """The column of a `WindowStats` counter (e.g. `approved`) in a cube's counts table."""
    return f"v{_COUNTERS.index(name)}"


def _counter_sql() -> list[str]:
    """The counters of WindowStats, then latency at or above each edge, over leaf rows.

    Sums of CASE, not FILTER clauses: DuckDB runs each FILTER as a pass of its own.
    """

    def s(pred: str, count: str = "n") -> str:
        return f"sum(CASE WHEN {pred} THEN {count} ELSE 0 END)"

    technical = f"status = 'error' OR code IN ({_in_list(TECHNICAL_CODES)})"
    exprs = {
        "attempts": "sum(n)",
        "approved": s("status = 'approved'"),
        "declined": s("status = 'declined'"),
        "errors": s("status = 'error'"),
        "technical": s(technical),
        "soft": s(f"status = 'declined' AND code IN ({_in_list(SOFT_CODES)})"),
        "hard": s(
            f"status = 'declined' AND NOT (code IN ({_in_list(SOFT_CODES | TECHNICAL_CODES)}))"
        ),
        "fraud": s(f"code IN ({_in_list(FRAUD_CODES)})"),
        "authentication": s(f"code IN ({_in_list(AUTHENTICATION_CODES)})"),
        "insufficient_funds": s("code = '51'"),
        "three_ds_attempts": "sum(tds)",
        "challenged": "sum(tds_challenged)",
        "three_ds_failed": "sum(tds_failed)",
        "retries": "sum(retries)",
    }
    cols = [exprs[name] for name in _COUNTERS]
    # Attempts at or above edge i are those in bucket i + 1 or higher.
    cols += [s(f"latency_bucket > {i}") for i in range(_N_EDGES)]
    return cols


def _outside(segments: Sequence[Segment]) -> tuple[str, dict[str, str]]:
    """SQL predicate for traffic in none of `segments` (values bound as parameters)."""
    if not segments:
        return "true", {}
    parts: list[str] = []
    params: dict[str, str] = {}
    for i, seg in enumerate(segments):
        pred, p = sql.segment_filter(seg, prefix=f"x{i}_")
        parts.append(f"({pred})")
        params.update(p)
    return f"NOT ({' OR '.join(parts)})", params


def grouping_sets(dimensions: Sequence[str], depth: int) -> list[tuple[str, ...]]:
    """Every subset of `dimensions` with at most `depth` members, smallest first."""
    sets: list[tuple[str, ...]] = []
    for k in range(min(depth, len(dimensions)) + 1):
        sets.extend(itertools.combinations(dimensions, k))
    return sets


def rollup(
    conn: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str],
    depth: int,
    baseline: TimeWindow,
    current: TimeWindow,
    *,
    cube: str = "observe_leaf",
    exclude: Sequence[Segment] = (),
) -> SegmentTable:
    """Metrics of every segment of up to `depth` dimensions, from the leaf cube.

    `exclude` removes the traffic of some segments first (used to explain away a root
    cause already found before looking for the next one).
    """
    sets = grouping_sets(dimensions, depth)
    # Each leaf is counted once per grouping set, with the dimensions outside the set
    # blanked: one GROUP BY over (set, key) does what GROUPING SETS does, at half the cost
    # on a cube this small (DuckDB runs each grouping set as an aggregate of its own).
    masks = [sum(1 << dimensions.index(d) for d in s) for s in sets]
    keys = ", ".join(
        f"CASE WHEN m & {1 << i} <> 0 THEN {sql.ident(d)} END AS {sql.ident(d)}"
        for i, d in enumerate(dimensions)
    )
    dims = ", ".join(sql.ident(d) for d in dimensions)
    width = _N_COUNTERS + _N_EDGES
    values = ", ".join(f"v{i}" for i in range(width))
    sums = ", ".join(f"sum(v{i})::BIGINT" for i in range(width))
    where, params = _outside(exclude)
    query = f"""
        SELECT set_index, m, is_current, {dims}, {sums}
        FROM (
            SELECT set_index, m, is_current, {keys}, {values}
            FROM (SELECT * FROM {cube}_counts WHERE {where}),
                 (SELECT unnest($masks::BIGINT[]) AS m, unnest(range($sets)) AS set_index)
        )
        GROUP BY ALL
        ORDER BY set_index, {dims}, is_current
    """
    rows = conn.execute(query, {**params, "masks": masks, "sets": len(masks)}).fetchall()
    n_dims = len(dimensions)
    windows: dict[LeafKey, list[WindowStats]] = {}
    for row in rows:
        mask = int(row[1])
        key = tuple((dimensions[i], str(row[3 + i])) for i in range(n_dims) if (mask >> i) & 1)
        pair = windows.setdefault(key, [WindowStats(), WindowStats()])
        pair[1 if row[2] else 0] = WindowStats.from_values(row[3 + n_dims :])
    segments = {key: SegmentMetrics(key, base, cur) for key, (base, cur) in windows.items()}
    return SegmentTable(list(dimensions), depth, baseline, current, segments)


@dataclass(frozen=True)
class CodeMix:
    """Failures by decline code of one segment, in both windows."""

    baseline: dict[str, int]
    current: dict[str, int]


def code_mix(
    conn: duckdb.DuckDBPyConnection,
    segments: Sequence[Segment],
    *,
    cube: str = "observe_leaf",
) -> list[CodeMix]:
    """Decline-code counts for each of `segments` (one query for all of them)."""
    if not segments:
        return []
    selects: list[str] = []
    params: dict[str, str] = {}
    for i, seg in enumerate(segments):
        pred, p = sql.segment_filter(seg, prefix=f"s{i}_")
        selects.append(
            f"SELECT {i} AS seg, is_current, code, sum(n) AS n FROM {cube} "
            f"WHERE status <> 'approved' AND ({pred}) GROUP BY ALL"
        )
        params.update(p)
    rows = conn.execute(" UNION ALL ".join(selects), params).fetchall()
    mixes = [CodeMix({}, {}) for _ in segments]
    for seg_idx, is_current, code, n in rows:
        target = mixes[int(seg_idx)].current if is_current else mixes[int(seg_idx)].baseline
        target[str(code) or "(none)"] = int(n)
    return mixes
