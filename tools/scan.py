"""One pass over a transactions source: every row checked and the leaf cube built at once.

The source is a relation of checked rows (`sql.checked_rows`: typed columns plus the error
code of the first rule each row breaks), so a file is one kind of source and a database
table could be another. A single GROUP BY over it yields, per time bucket, the leaf cube
observe needs (`metrics.leaf_select`), and in the same groups the count of bad rows, the
time range and, for row-oriented files, the hashes of the txn_ids. Nothing is copied: a
10-million-row file costs one read.

The cube is cut at the bounds of the windows known before the pass (`metrics.TimeBuckets`),
so observe sums whole buckets instead of reading the file again. Leaf counts are
additive, which is also what lets a file that only grew be scanned for its new rows only
(`merge`, used by `tools/scan_cache.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from tools import sql
from tools.metrics import LEAF_COUNTS, TimeBuckets, leaf_select, leaf_sums

CUBE_TABLE = "__payops_cube"
# Columns of the cube beside the leaf columns: the bucket, then the group's bad rows,
# earliest and latest timestamp (and, with ids, the list of its txn_id hashes).
_CHECKS = f"count({sql.ERROR_COLUMN}) AS bad, min(ts) AS first_ts, max(ts) AS last_ts"


@dataclass(frozen=True)
class Scan:
    """What one pass over a source found, and where its cube is.

    `table` holds, per (bucket, leaf), the leaf counts of `metrics.LEAF_COUNTS`; when
    `has_ids` it also holds `ids`, the hashes of the rows' txn_ids. `repeated_ids` counts
    hashes seen more than once (0 proves the ids unique; more may still be a collision).
    `ts_range` is None when there are bad rows.
    """

    table: str
    dimensions: tuple[str, ...]
    buckets: TimeBuckets
    rows: int
    bad: int
    repeated_ids: int
    ts_range: tuple[datetime, datetime] | None
    has_ids: bool

    @property
    def clean(self) -> bool:
        """Every row passed its checks and no two ids can be equal."""
        return self.rows > 0 and self.bad == 0 and self.repeated_ids == 0


def scan(
    conn: duckdb.DuckDBPyConnection,
    checked: str,
    dimensions: list[str],
    buckets: TimeBuckets,
    *,
    ids: bool,
    table: str = CUBE_TABLE,
    params: dict[str, Any] | None = None,
) -> Scan:
    """One GROUP BY over `checked` (a relation: a view, or a query in parentheses).

    With `ids`, the txn_id hashes are collected in the same pass (what a CSV needs: reading
    it twice costs a second parse) and kept for the scan cache; without, they are checked
    by a second pass over the id column alone (what a columnar file does best).
    """
    bucket, bucket_params = buckets.sql()
    collected = ", list(hash(txn_id)) AS ids" if ids else ""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT {bucket} AS bucket, {leaf_select(dimensions)}, {_CHECKS}{collected}
        FROM {checked}
        GROUP BY ALL""",
        {**(params or {}), **bucket_params},
    )
    row = conn.execute(f"SELECT sum(n), sum(bad) FROM {table}").fetchone()
    rows, bad = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
    repeated, ts_range = 0, None
    if rows and not bad:
        # Only now: a bad row's timestamp may be one no datetime can hold.
        span = conn.execute(f"SELECT min(first_ts), max(last_ts) FROM {table}").fetchone()
        ts_range = (span[0], span[1]) if span else None
        repeated = repeated_ids(conn, table, None if ids else checked, params)
    return Scan(table, tuple(dimensions), buckets, rows, bad, repeated, ts_range, ids)


def repeated_ids(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    checked: str | None,
    params: dict[str, Any] | None = None,
) -> int:
    """Id hashes seen more than once: from the cube's `ids`, else a pass over `checked`."""
    hashes = (
        f"SELECT unnest(ids) AS h FROM {table}"
        if checked is None
        else f"SELECT hash(txn_id) AS h FROM {checked}"
    )
    # Sorted, equal hashes are neighbours: on 10M ids this costs about 60% of a
    # count(DISTINCT ...), whose hash table of every id misses the CPU cache.
    query = f"""SELECT count(*) FROM (
        SELECT h = lead(h) OVER (ORDER BY h) AS again FROM ({hashes})
    ) WHERE again"""
    row = conn.execute(query, params or {}).fetchone()
    return int(row[0] or 0) if row else 0


def merge(
    conn: duckdb.DuckDBPyConnection,
    parts: list[str],
    dimensions: list[str],
    buckets: TimeBuckets,
    *,
    rows: int,
    ts_range: tuple[datetime, datetime],
    table: str = CUBE_TABLE,
) -> Scan:
    """The cube of several disjoint sets of rows (relations of cube rows), summed.

    The parts must share `buckets`; the merged cube keeps no ids (the cache keeps those).
    """
    dims = ", ".join(sql.ident(d) for d in dimensions)
    leaf = f"bucket, {dims}, status, code, latency_bucket"
    union = " UNION ALL ".join(
        f"SELECT {leaf}, {', '.join(name for name, _ in LEAF_COUNTS)} FROM {p}" for p in parts
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT {leaf}, {leaf_sums()}, 0::BIGINT AS bad,
               $first::TIMESTAMP AS first_ts, $last::TIMESTAMP AS last_ts
        FROM ({union})
        GROUP BY ALL""",
        {"first": ts_range[0], "last": ts_range[1]},
    )
    return Scan(table, tuple(dimensions), buckets, rows, 0, 0, ts_range, False)
