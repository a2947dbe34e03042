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
from typing import Any, cast

import duckdb

from tools import sql
from tools.contract import Segment, TimeWindow, utc
from tools.decline_codes import (
    AUTHENTICATION_CODES,
    FRAUD_CODES,
    GATEWAY_CODES,
    SOFT_CODES,
    TECHNICAL_CODES,
)
from tools.stats import quantile_from_cumulative, rate_increase_p_value

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
    "gateway_errors",
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
    gateway_errors: int = 0
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
    # Attempts per candidate decline code, in the order of `SegmentTable.codes`.
    codes: tuple[int, ...] = ()

    @classmethod
    def from_values(cls, values: Sequence[int | float | None], n_codes: int = 0) -> WindowStats:
        """Build from the counter columns, the latency columns, then `n_codes` code columns."""
        # DuckDB's sums are Python ints already (None for an empty sum).
        ints = cast(list[int], [v or 0 for v in values])
        lat_end = _N_COUNTERS + _N_EDGES
        return cls(
            **dict(zip(_COUNTERS, ints, strict=False)),
            latency_at_least=tuple(ints[_N_COUNTERS:lat_end]),
            codes=tuple(ints[lat_end : lat_end + n_codes]) if n_codes else (),
        )

    def minus(self, other: WindowStats) -> WindowStats:
        """Counts of this segment with `other` (a part of it) taken out."""
        fields: dict[str, Any] = {
            name: getattr(self, name) - getattr(other, name) for name in _COUNTERS
        }
        lat = tuple(
            a - b for a, b in zip(self.latency_at_least, other.latency_at_least, strict=True)
        )
        codes = tuple(a - b for a, b in zip(self.codes, other.codes, strict=True))
        return WindowStats(**fields, latency_at_least=lat, codes=codes)

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
    # Candidate decline codes, whose attempts every WindowStats carries in this order.
    codes: tuple[str, ...] = ()
    # Segments deeper than `depth` measured only where screened: how many such segments
    # the full cube one level deeper would hold, so their tests pay for all of them.
    deep_space: int = 0

    def deep_level(self, key: LeafKey, fdr: float) -> float:
        """The p-value a segment must reach on top of its signal's cut-off: 1 within
        `depth`, Bonferroni over the whole deeper level below it."""
        return 1.0 if len(key) <= self.depth else fdr / max(self.deep_space, 1)

    @property
    def total(self) -> SegmentMetrics:
        """All traffic."""
        return self.segments.get(()) or self._empty(())

    def _empty(self, key: LeafKey) -> SegmentMetrics:
        empty = WindowStats(codes=(0,) * len(self.codes))
        return SegmentMetrics(key, empty, empty)

    @property
    def duration_ratio(self) -> float:
        """Current window length over baseline window length."""
        return self.current.minutes / self.baseline.minutes

    def values(self) -> dict[str, list[str]]:
        """Every value of each dimension, as the one-dimension segments show them."""
        out: dict[str, list[str]] = {}
        for key in self.segments:
            if len(key) == 1:
                out.setdefault(key[0][0], []).append(key[0][1])
        return out

    def get(self, key: LeafKey) -> SegmentMetrics:
        """Metrics of a segment; an unseen segment has zero counts."""
        return self.segments.get(key) or self._empty(key)


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

    `name`: counts `n` per (is_current, every dimension, status, code, and the latency
    bucket of approved attempts), which `code_mix`, `prepare_codes` and `approved_latency`
    read; `name_counts`: the window counters of `WindowStats` per leaf, the baseline's
    then the current window's, which every rollup sums.
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
    conn: duckdb.DuckDBPyConnection,
    leaves: str,
    dimensions: Sequence[str],
    target: str,
    *,
    shared: bool = False,
) -> None:
    """The bucket cube `target` from a table of leaves (`bucket` + `leaf_select` columns).

    `target_counts`: the window counters (v0...) per (bucket, leaf), status, code and
    latency collapsed once, so that windows and rollups are plain sums afterwards;
    `target_codes`: attempts `n` per (bucket, leaf, status, code) and, for approved
    attempts, latency bucket (NULL otherwise), which `code_mix`, `prepare_codes` and
    `approved_latency` read.
    Both are additive across buckets and across sets of rows. `shared` tables are seen by
    every cursor of the database (the load's cube, which chat queries from cursors of its
    own); else they are temporary, private to `conn`.
    """
    kind = _table_kind(shared)
    dims = ", ".join(sql.ident(d) for d in dimensions)
    counters = ", ".join(f"({expr})::BIGINT AS v{i}" for i, expr in enumerate(_counter_sql()))
    conn.execute(
        f"""CREATE OR REPLACE {kind} {target}_counts AS
        SELECT bucket, {dims}, {counters} FROM {leaves} GROUP BY ALL"""
    )
    conn.execute(
        f"""CREATE OR REPLACE {kind} {target}_codes AS
        SELECT bucket, {dims}, status, code,
               CASE WHEN status = 'approved' THEN latency_bucket END AS latency_bucket,
               sum(n)::BIGINT AS n
        FROM {leaves} GROUP BY ALL"""
    )


def _table_kind(shared: bool) -> str:
    return "TABLE" if shared else "TEMP TABLE"


def merge_bucket_cubes(
    conn: duckdb.DuckDBPyConnection,
    parts: Sequence[tuple[str, str]],
    dimensions: Sequence[str],
    target: str,
    *,
    summed: bool,
    shared: bool = False,
) -> None:
    """The bucket cube `target` of several disjoint sets of rows, from their cubes.

    Each part is a pair of relations (its counts, its codes: see `collapse_leaves`), such
    as the tables of a bucket cube or the Parquet files the scan cache keeps, all cut at
    the same time buckets. `summed` adds up each leaf's rows; without, the parts are only
    put together, and a leaf may have a row in each (`window_cube(..., repeated=True)`).
    `shared` as in `collapse_leaves`.
    """
    dims = ", ".join(sql.ident(d) for d in dimensions)
    width = _N_COUNTERS + _N_EDGES
    sums = ", ".join(f"sum(v{i})::BIGINT AS v{i}" for i in range(width))
    merged = {
        "counts": (f"bucket, {dims}", sums, [counts for counts, _ in parts]),
        "codes": (
            f"bucket, {dims}, status, code, latency_bucket",
            "sum(n)::BIGINT AS n",
            [c for _, c in parts],
        ),
    }
    for suffix, (keys, values, relations) in merged.items():
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM {r}" for r in relations)
        query = f"SELECT {keys}, {values} FROM ({union}) GROUP BY ALL" if summed else union
        conn.execute(
            f"CREATE OR REPLACE {_table_kind(shared)} {target}_{suffix}_merged AS {query}"
        )
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
    # (the usual cut) each leaf's code rows are taken as they are.
    summed = repeated or len(now) > 1 or len(inside) - len(now) > 1
    n = "sum(n)::BIGINT AS n" if summed else "n"
    group = " GROUP BY ALL" if summed else ""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {cube} AS
        SELECT {is_current} AS is_current, {dims}, status, code, latency_bucket, {n}
        FROM {bucket_cube}_codes WHERE {scope}{group}"""
    )
    # One row per leaf: the baseline's counters, then the current window's (what every
    # rollup, `breakdown` and `prepare_codes` read).
    width = _N_COUNTERS + _N_EDGES
    values = ", ".join(
        f"sum(CASE WHEN {'' if now_ else 'NOT '}({is_current}) THEN v{i} ELSE 0 END)::BIGINT"
        f" AS v{i + width * now_}"
        for now_ in (0, 1)
        for i in range(width)
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {cube}_counts AS
        SELECT {dims}, {values}
        FROM {bucket_cube}_counts WHERE {scope} GROUP BY ALL"""
    )
    return LeafCube(cube, tuple(dimensions), baseline, current)


def counter_column(name: str, *, current: bool) -> str:
    """The column of a `WindowStats` counter (e.g. `approved`) of one window in a cube's
    counts table (`{cube}_counts`: the baseline's counters, then the current window's)."""
    return f"v{_COUNTERS.index(name) + (_N_COUNTERS + _N_EDGES) * current}"


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
        "gateway_errors": s(f"status = 'error' OR code IN ({_in_list(GATEWAY_CODES)})"),
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


def _in_any(segments: Sequence[Segment], prefix: str) -> tuple[str, dict[str, str]]:
    """SQL predicate for traffic in any of `segments` (values bound as parameters named
    `<prefix><i>_...`); there must be at least one."""
    parts: list[str] = []
    params: dict[str, str] = {}
    for i, seg in enumerate(segments):
        pred, p = sql.segment_filter(seg, prefix=f"{prefix}{i}_")
        parts.append(f"({pred})")
        params.update(p)
    return " OR ".join(parts), params


def _outside(segments: Sequence[Segment]) -> tuple[str, dict[str, str]]:
    """SQL predicate for traffic in none of `segments` (values bound as parameters)."""
    if not segments:
        return "true", {}
    pred, params = _in_any(segments, "x")
    return f"NOT ({pred})", params


# Sums of every counter column of a `{cube}_counts` table: baseline, then current.
_SUMS = ", ".join(f"sum(v{i})" for i in range(2 * (_N_COUNTERS + _N_EDGES)))


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
    codes: Sequence[str] = (),
    within: Segment | None = None,
    sets: Sequence[tuple[str, ...]] | None = None,
    among: Sequence[Segment] = (),
) -> SegmentTable:
    """Metrics of every segment of up to `depth` dimensions, from the leaf cube.

    `exclude` removes the traffic of some segments first (used to explain away a root
    cause already found before looking for the next one). `codes` are the candidate
    decline codes counted per segment (`prepare_codes` built their table). `within` and
    `sets` restrict the rollup to one segment's traffic and the given dimension sets
    (used to look one dimension deeper inside a root cause); `among` restricts it to the
    traffic of any of several segments.
    """
    sets = list(sets) if sets is not None else grouping_sets(dimensions, depth)
    # GROUPING() may only name grouped dimensions: those of some set, in table order.
    grouped = [d for d in dimensions if any(d in s for s in sets)]
    dims = [sql.ident(d) for d in grouped]
    gsets = ", ".join("(" + ", ".join(sql.ident(d) for d in s) + ")" for s in sets)
    where, params = _outside(exclude)
    if within:
        pred, p = sql.segment_filter(within, prefix="w_")
        where = f"({where}) AND ({pred})"
        params.update(p)
    if among:
        pred, p = _in_any(among, "a")
        where = f"({where}) AND ({pred})"
        params.update(p)
    width = _N_COUNTERS + _N_EDGES
    n_codes = len(codes)
    columns = [f"v{i}" for i in range(2 * width)]
    source = f"{cube}_counts"
    if n_codes:
        code_columns = [f"k{i}" for i in range(2 * n_codes)]
        source = f"{cube}_signals"  # the counters and the code counts (`prepare_codes`)
        columns = (
            [f"v{i}" for i in range(width)]
            + code_columns[:n_codes]
            + [f"v{i}" for i in range(width, 2 * width)]
            + code_columns[n_codes:]
        )
    sums = ", ".join(f"sum({c})" for c in columns)
    query = f"""
        SELECT GROUPING({", ".join(dims)}) AS gid, {", ".join(dims)}, {sums}
        FROM {source}
        WHERE {where}
        GROUP BY GROUPING SETS ({gsets})
    """
    rows = conn.execute(query, params).fetchall()
    n_dims = len(grouped)
    segments: dict[LeafKey, SegmentMetrics] = {}
    for row in rows:
        gid = int(row[0])
        key = tuple(
            (grouped[i], str(row[1 + i]))
            for i in range(n_dims)
            # GROUPING() sets bit (n-1-i) when dimension i is rolled up.
            if not (gid >> (n_dims - 1 - i)) & 1
        )
        if within:
            key = key_of({**within, **dict(key)}, dimensions)
        segments[key] = _segment_metrics(key, row[1 + n_dims :], n_codes)
    return SegmentTable(list(dimensions), depth, baseline, current, segments, tuple(codes))


# At most this many decline codes are followed per segment: those whose share of all
# attempts rose the most surely (a code rising in one segment rises in the total too,
# by the same count), and at least at this level, Bonferroni over the codes seen. On
# quiet traffic that is none 19 times in 20, and the segments carry no code counts.
MAX_CANDIDATE_CODES = 6
CANDIDATE_CODE_P = 0.05


def prepare_codes(
    conn: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str],
    *,
    cube: str = "observe_leaf",
    limit: int = MAX_CANDIDATE_CODES,
) -> tuple[str, ...]:
    """Pick the candidate decline codes and build the leaves' counters with their counts
    (`{cube}_signals`, which `rollup(codes=...)` reads).

    A candidate is a code whose share of all attempts rose (one-sided p-value at most
    `CANDIDATE_CODE_P` over the number of codes); the `limit` with the smallest p-values
    are kept, in code order.
    """
    rows = conn.execute(
        f"SELECT code, sum(n) FILTER (WHERE NOT is_current), sum(n) FILTER (WHERE is_current) "
        f"FROM {cube} WHERE code IS NOT NULL AND code <> '' GROUP BY code"
    ).fetchall()
    totals = conn.execute(
        f"SELECT sum(n) FILTER (WHERE NOT is_current), sum(n) FILTER (WHERE is_current) FROM {cube}"
    ).fetchone()
    n_b, n_c = (int(totals[0] or 0), int(totals[1] or 0)) if totals else (0, 0)
    rising = []
    for code, b, c in rows:
        b, c = int(b or 0), int(c or 0)
        if n_b and n_c and c / n_c > b / n_b:
            p = rate_increase_p_value(n_b, b, n_c, c)
            if p <= CANDIDATE_CODE_P / len(rows):
                rising.append((p, str(code)))
    codes = tuple(sorted(code for _, code in sorted(rising)[:limit]))
    if codes:
        dims = ", ".join(sql.ident(d) for d in dimensions)
        cols = [
            f"sum(n) FILTER (WHERE is_current = {w} AND code = {_in_list([code])}) AS k{j}"
            for j, (w, code) in enumerate(
                [("false", c) for c in codes] + [("true", c) for c in codes]
            )
        ]
        sums = ", ".join(
            f"sum({c}) AS {c}"
            for c in [f"v{i}" for i in range(2 * (_N_COUNTERS + _N_EDGES))]
            + [f"k{j}" for j in range(2 * len(codes))]
        )
        # One table of leaves with both the counters and the code counts, so that every
        # rollup afterwards reads as many rows as without codes.
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {cube}_signals AS "
            f"SELECT {dims}, {sums} FROM ("
            f"SELECT * FROM {cube}_counts UNION ALL BY NAME "
            f"SELECT {dims}, {', '.join(cols)} FROM {cube} "
            f"WHERE code IN ({_in_list(codes)}) GROUP BY ALL) GROUP BY ALL"
        )
    return codes


def _per_segment(
    conn: duckdb.DuckDBPyConnection, segments: Sequence[Segment], select: str, source: str
) -> list[tuple[Any, ...]]:
    """`SELECT <i>, {select} FROM {source} AND <segment i> GROUP BY ALL` for every segment,
    in one query; rows start with the segment's index. `source` ends in a WHERE clause."""
    if not segments:
        return []
    selects: list[str] = []
    params: dict[str, str] = {}
    for i, seg in enumerate(segments):
        pred, p = sql.segment_filter(seg, prefix=f"s{i}_")
        selects.append(f"SELECT {i} AS seg, {select} FROM {source} AND ({pred}) GROUP BY ALL")
        params.update(p)
    return conn.execute(" UNION ALL ".join(selects), params).fetchall()


def _segment_metrics(
    key: LeafKey, values: Sequence[int | float | None], n_codes: int = 0
) -> SegmentMetrics:
    """A segment's metrics from summed cube columns: the baseline's counters, latency
    columns and `n_codes` code counts, then the current window's."""
    half = _N_COUNTERS + _N_EDGES + n_codes
    return SegmentMetrics(
        key,
        WindowStats.from_values(values[:half], n_codes),
        WindowStats.from_values(values[half:], n_codes),
    )


def breakdown(
    conn: duckdb.DuckDBPyConnection,
    dimensions: Sequence[str],
    segment: Segment,
    by: Sequence[str] = (),
    *,
    cube: str = "observe_leaf",
) -> dict[LeafKey, SegmentMetrics]:
    """Metrics of `segment` split along the dimensions `by`, from a leaf cube.

    With no `by`, the one entry is the segment itself (zero counts when it has no traffic).
    Keys are the segment plus each child's values, in `dimensions` order. Any two windows
    work, as `build_leaf_cube` built them; a cube built with the same window twice holds
    every attempt in `current`.
    """
    where, params = sql.segment_filter(segment)
    cols = ", ".join(sql.ident(d) for d in by)
    select = f"{cols}, {_SUMS}" if by else _SUMS
    group = f" GROUP BY {cols}" if by else ""
    rows = conn.execute(
        f"SELECT {select} FROM {cube}_counts WHERE {where}{group}", params
    ).fetchall()
    out: dict[LeafKey, SegmentMetrics] = {}
    for row in rows:
        child = {**segment, **{d: str(v) for d, v in zip(by, row, strict=False)}}
        key = key_of(child, dimensions)
        out[key] = _segment_metrics(key, row[len(by) :])
    if not by and not out:
        key = key_of(segment, dimensions)
        out[key] = SegmentMetrics(key, WindowStats(), WindowStats())
    return out


@dataclass(frozen=True)
class MixRateSplit:
    """A success-rate change split into traffic mix and rates within sub-segments.

    `total = mix + rate` exactly (fractions of success rate). `parts` holds each child's
    (key, mix, rate) contribution.
    """

    total: float
    mix: float
    rate: float
    parts: tuple[tuple[LeafKey, float, float], ...]


def mix_rate_split(parent: SegmentMetrics, children: Iterable[SegmentMetrics]) -> MixRateSplit:
    """How much of `parent`'s success-rate change comes from mix, how much from rates.

    With child weights w (share of attempts) and rates r in the baseline and w', r' in the
    current window, the change sum(w'r') - sum(wr) splits exactly (midpoint weights) into
    mix = sum((w' - w)(r + r')/2) and rate = sum((r' - r)(w + w')/2). A child with no
    attempts in one window takes its rate from the other, so it only moves the mix.
    """
    n0, n1 = parent.baseline.attempts, parent.current.attempts
    parts: list[tuple[LeafKey, float, float]] = []
    for child in children:
        b, c = child.baseline, child.current
        w0 = b.attempts / n0 if n0 else 0.0
        w1 = c.attempts / n1 if n1 else 0.0
        r0 = b.success_rate if b.attempts else c.success_rate
        r1 = c.success_rate if c.attempts else b.success_rate
        parts.append((child.key, (w1 - w0) * (r0 + r1) / 2, (r1 - r0) * (w0 + w1) / 2))
    mix = sum(p[1] for p in parts)
    rate = sum(p[2] for p in parts)
    return MixRateSplit(mix + rate, mix, rate, tuple(parts))


@dataclass(frozen=True)
class TimeBucket:
    """Attempts of one segment in one time bucket."""

    start: datetime
    attempts: int
    approved: int
    errors: int
    all_attempts: int  # every attempt of the bucket, in the segment or not

    @property
    def success_rate(self) -> float:
        """Approved attempts over attempts (0.0 when none)."""
        return self.approved / self.attempts if self.attempts else 0.0


def timeline(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    segment: Segment,
    window: TimeWindow,
    bucket_minutes: int,
) -> list[TimeBucket]:
    """Attempts, approvals and errors of `segment` per bucket of `window` (one query).

    Buckets start at the window's start; buckets without any attempt are left out.
    """
    where, params = sql.segment_filter(segment)
    rows = conn.execute(
        sql.TIMELINE.format(table=sql.ident(table), where=where),
        {
            **params,
            "minutes": int(bucket_minutes),
            "origin": naive_utc(window.start),
            "start": naive_utc(window.start),
            "end": naive_utc(window.end),
        },
    ).fetchall()
    return [TimeBucket(utc(r[0]), *(int(v) for v in r[1:5])) for r in rows]


def dimension_values(
    conn: duckdb.DuckDBPyConnection, table: str, dimensions: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Every value of each dimension with its attempts (one scan), most frequent first."""
    if not dimensions:
        return {}
    rows = conn.execute(sql.dimension_values(table, list(dimensions))).fetchall()
    n = len(dimensions)
    found: dict[str, list[tuple[str, int]]] = {d: [] for d in dimensions}
    for row in rows:
        gid = int(row[0])
        for i, dim in enumerate(dimensions):
            if not (gid >> (n - 1 - i)) & 1:
                found[dim].append((str(row[1 + i]), int(row[-1])))
    return {
        dim: dict(sorted(values, key=lambda kv: (-kv[1], kv[0]))) for dim, values in found.items()
    }


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
    rows = _per_segment(
        conn, segments, "is_current, code, sum(n) AS n", f"{cube} WHERE status <> 'approved'"
    )
    mixes = [CodeMix({}, {}) for _ in segments]
    for seg_idx, is_current, code, n in rows:
        target = mixes[int(seg_idx)].current if is_current else mixes[int(seg_idx)].baseline
        target[str(code) or "(none)"] = int(n)
    return mixes


def approved_latency(
    conn: duckdb.DuckDBPyConnection,
    segments: Sequence[Segment],
    *,
    cube: str = "observe_leaf",
) -> list[tuple[float, float]]:
    """p95 latency of approved attempts of each of `segments`, (baseline, current), in ms.

    Slow successes tell a slow route from one that fails fast or times out: the latter
    moves the latency of all attempts, not of the approved ones.
    """
    rows = _per_segment(
        conn,
        segments,
        "is_current, latency_bucket, sum(n) AS n",
        f"{cube} WHERE status = 'approved'",
    )
    buckets = [[[0] * _LATENCY_BUCKETS for _ in range(2)] for _ in segments]
    for seg_idx, is_current, bucket, n in rows:
        buckets[int(seg_idx)][1 if is_current else 0][int(bucket)] += int(n)
    out = []
    for windows in buckets:
        p95 = []
        for counts in windows:
            total = sum(counts)
            # Attempts at or above edge i are those in bucket i + 1 or higher.
            at_least = [sum(counts[i + 1 :]) for i in range(_N_EDGES)]
            p95.append(quantile_from_cumulative(LATENCY_EDGES_MS, at_least, total, 0.95))
        out.append((p95[0], p95[1]))
    return out
