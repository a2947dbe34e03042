"""One pass over a transactions source: every row checked and the leaf cube built at once.

The source is a relation of checked rows (`sql.checked_rows`: typed columns plus the error
code of the first rule each row breaks), so a file is one kind of source and a database
table could be another. A single GROUP BY over it yields the leaves of observe's cube per
time bucket (`metrics.leaf_select`) and, in the same groups, the count of bad rows, the
time range and, for row-oriented files, the hashes of the txn_ids. Nothing is copied: a
10-million-row file costs one read. The leaves are then collapsed into a bucket cube
(`metrics.collapse_leaves`), from which observe sums the windows it compares.

The cube is cut at the bounds of the windows known before the pass (`metrics.TimeBuckets`).
Counts are additive, which is also what lets a file that only grew be read for its new
rows only (`tools/scan_cache.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import duckdb

from tools import sql
from tools.metrics import TimeBuckets, collapse_leaves, leaf_select

CUBE = "__payops_cube"
# Per group of the pass, beside the leaf columns: bad rows, earliest and latest timestamp.
_CHECKS = f"count({sql.ERROR_COLUMN}) AS bad, min(ts) AS first_ts, max(ts) AS last_ts"


@dataclass(frozen=True)
class ScanSource:
    """A file to read once: what it is, how its rows are checked, and the cube to build.

    `checked(path)` is the relation of checked rows (`sql.checked_rows`) of `file`, or of
    another file of the same format and columns (the scan cache reads appended rows from
    one). `ids`: collect the txn_id hashes in the pass (row-oriented files).
    """

    file: Path
    kind: str
    columns: list[str]
    dimensions: list[str]
    buckets: TimeBuckets
    checked: Callable[[Path], str]
    ids: bool


@dataclass(frozen=True)
class Scan:
    """What one pass over a set of rows found, and where its cube is.

    `cube` names the bucket cube (`<cube>_counts`, `<cube>_codes`), built only when the
    rows are `clean`. `leaves`, until released, is the pass's table of leaves; with
    `has_ids` it holds the hashes of the rows' txn_ids (`ids_relation`). `repeated_ids`
    counts hashes seen more than once: 0 proves the ids unique, more may still be a hash
    collision. `ts_range` is None unless every row passed. `repeated_leaves`: the cube
    was put together from parts, so a leaf may have a row in each (see `window_cube`).
    """

    cube: str
    dimensions: tuple[str, ...]
    buckets: TimeBuckets
    rows: int
    bad: int = 0
    repeated_ids: int = 0
    ts_range: tuple[datetime, datetime] | None = None
    leaves: str | None = None
    has_ids: bool = False
    repeated_leaves: bool = False

    @property
    def clean(self) -> bool:
        """Every row passed its checks and no two ids can be equal."""
        return self.rows > 0 and self.bad == 0 and self.repeated_ids == 0

    @property
    def ids_relation(self) -> str:
        """The txn_id hashes of the rows, one per row (needs `has_ids` and `leaves`)."""
        if not self.has_ids or self.leaves is None:
            raise ValueError("this scan kept no id hashes")
        return f"(SELECT unnest(ids) AS h FROM {self.leaves})"


def scan(
    conn: duckdb.DuckDBPyConnection,
    checked: str,
    dimensions: list[str],
    buckets: TimeBuckets,
    *,
    ids: bool,
    cube: str = CUBE,
) -> Scan:
    """One GROUP BY over `checked` (a relation: a view, or a query in parentheses).

    With `ids`, the txn_id hashes are collected in the same pass (what a CSV needs: reading
    it twice costs a second parse) and kept with the leaves for the scan cache; without,
    they are checked by a second pass over the id column alone (what a columnar file does
    best). Release the leaves with `release` once the hashes are no longer needed.
    """
    leaves = f"{cube}_leaves"
    query, params = pass_query(checked, dimensions, buckets, ids=ids)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {leaves} AS {query}", params)
    row = conn.execute(f"SELECT sum(n), sum(bad) FROM {leaves}").fetchone()
    rows, bad = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
    found = Scan(cube, tuple(dimensions), buckets, rows, bad, leaves=leaves, has_ids=ids)
    if not rows or bad:
        return found
    # Only now: a bad row's timestamp may be one no datetime can hold.
    span = conn.execute(f"SELECT min(first_ts), max(last_ts) FROM {leaves}").fetchone()
    hashes = found.ids_relation if ids else f"(SELECT hash(txn_id) AS h FROM {checked})"
    found = replace(
        found,
        ts_range=(span[0], span[1]) if span else None,
        repeated_ids=repeated(conn, hashes),
    )
    if found.clean:
        collapse_leaves(conn, leaves, dimensions, cube, shared=True)
    return found


def pass_query(
    checked: str, dimensions: list[str], buckets: TimeBuckets, *, ids: bool
) -> tuple[str, dict[str, datetime]]:
    """The one pass as a SELECT (see `scan`), and its parameters."""
    bucket, params = buckets.sql()
    collected = ", list(hash(txn_id)) AS ids" if ids else ""
    query = f"""SELECT {bucket} AS bucket, {leaf_select(dimensions)}, {_CHECKS}{collected}
        FROM {checked}
        GROUP BY ALL"""
    return query, params


def read_once(conn: duckdb.DuckDBPyConnection, source: ScanSource) -> Scan:
    """The one pass over `source` (see `scan`), its leaves released."""
    found = scan(
        conn, source.checked(source.file), source.dimensions, source.buckets, ids=source.ids
    )
    return release(conn, found)


def release(conn: duckdb.DuckDBPyConnection, found: Scan) -> Scan:
    """Drop the pass's table of leaves (and its id hashes); the cube stays."""
    if found.leaves is not None:
        conn.execute(f"DROP TABLE IF EXISTS {found.leaves}")
    return replace(found, leaves=None, has_ids=False)


def repeated(conn: duckdb.DuckDBPyConnection, hashes: str) -> int:
    """How many hashes in the relation `hashes` (one column `h`) repeat an earlier one."""
    # Sorted, equal hashes are neighbours: on 10M ids this costs about 60% of a
    # count(DISTINCT ...), whose hash table of every id misses the CPU cache.
    row = conn.execute(
        f"""SELECT count(*) FROM (
            SELECT h = lead(h) OVER (ORDER BY h) AS again FROM {hashes}
        ) WHERE again"""
    ).fetchone()
    return int(row[0] or 0) if row else 0
