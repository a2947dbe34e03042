"""Reading transactions (CONTRACT.md section 1) and scenario folders (section 2) into DuckDB.

This is the only loader in payops: the CLI, observe, chat tools, evals and benchmarks all
come through `load`.

A file is read once (`tools/scan.py`): one DuckDB pass types every column, finds the first
rule each row breaks, and builds observe's leaf cube, cut at the windows observe will
compare. Nothing loops over rows in Python and nothing is copied: afterwards
`transactions` is a view that reads the file again if asked. Only a file with a bad row
(or two equal id hashes) is copied into memory, where the first bad line is named, or the
bad rows are quarantined.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

import duckdb
from pydantic import BaseModel, ValidationError

from tools import sql
from tools.contract import TRANSACTION_COLUMNS, ScenarioSpec, TimeWindow
from tools.dimensions import (
    PROBE_ROWS,
    ColumnProfile,
    DimensionChoice,
    DimensionSpecError,
    choose_dimensions,
    columns_to_probe,
)
from tools.fields import first_error
from tools.metrics import LeafCube, TimeBuckets, build_leaf_cube, window_cube
from tools.output import atomic_path
from tools.scan import Scan, ScanSource, read_once
from tools.scan_cache import ScanCache
from tools.windows import windows_for_span

TRANSACTIONS_TABLE = "transactions"

SCENARIO_FILE = "scenario.json"
FileKind = Literal["csv", "csv.gz", "parquet", "jsonl"]
# Extension -> kind; `.csv.gz` is matched before `.csv`.
FILE_KINDS: dict[str, FileKind] = {
    ".csv.gz": "csv.gz",
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
}
TRANSACTIONS_FILES = tuple(f"transactions{ext}" for ext in FILE_KINDS)

# The contract's columns, in the order the table has them (extra columns follow).
CONTRACT_COLUMNS = TRANSACTION_COLUMNS
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(sql.OPTIONAL_DEFAULTS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in CONTRACT_COLUMNS if c not in OPTIONAL_COLUMNS)
LINE_COLUMN = "line"
# Columns that are not strings (or not attributes of a segment) cannot be dimensions.
NOT_DIMENSIONS = frozenset(
    {"txn_id", "ts", "amount_minor", "status", "latency_ms", "is_retry", LINE_COLUMN}
)
# Where row numbers start: the CSV header is line 1; JSONL and Parquet have none.
_LINE_OFFSET: dict[FileKind, int] = {"csv": 2, "csv.gz": 2, "parquet": 1, "jsonl": 1}
_MAX_HEADER_BYTES = 1 << 20
# A scenario.json (or a chat case) is a few kilobytes; anything past this is not one.
MAX_SCENARIO_BYTES = 8 << 20
# DuckDB's CSV read buffer. Set explicitly: on 10M rows the ordered insert then costs ~20%
# less CPU than with the default. Each buffer is scanned by one thread.
CSV_BUFFER_BYTES = 32 << 20
# Row-oriented files: the one pass collects the id hashes too (a second pass would parse
# the whole file again); a Parquet file reads its id column alone for that instead.
ROW_FILES: frozenset[FileKind] = frozenset({"csv", "csv.gz", "jsonl"})
# The leaf cube observe works on (its tables live in the dataset's connection).
LEAF_CUBE = "observe_leaf"

# DuckDB errors that mean a bug in payops' SQL rather than a bad input file.
_PROGRAMMING_ERRORS = (
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ParserException,
    duckdb.InternalException,
    duckdb.NotImplementedException,
)


class DataError(Exception):
    """Bad input a user can act on: names the file, line and column where known."""

    def __init__(
        self,
        file: Path | str,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """`file, line N, column C: reason`, with the parts that are known."""
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.reason}"


@dataclass
class Dataset:
    """Validated transactions, queried through the DuckDB view `transactions`.

    Columns: txn_id, ts (TIMESTAMP, UTC, naive), every dimension as VARCHAR ('' when
    empty), amount_minor BIGINT, status VARCHAR, decline_code VARCHAR ('' when none),
    latency_ms BIGINT, three_ds VARCHAR ('' when absent), is_retry BOOLEAN, and any extra
    string columns of the file as VARCHAR, then `line` (BIGINT).

    When every row passed (`streamed`), `transactions` reads the file again on each query
    and `line` is NULL; `scan` is the load's one pass, whose cube serves `leaf_cube`, and
    `ts_range` its first and last timestamps. When some rows did not (lenient mode), the
    good rows were copied into memory and `line` is each row's line in the file (CSV: the
    header is line 1; JSONL: the first record is line 1; Parquet: the row number from 1).
    """

    conn: duckdb.DuckDBPyConnection
    source: Path
    dimensions: list[str]
    rows: int
    scenario: ScenarioSpec | None = None
    quarantined: int = 0
    quarantine_path: Path | None = None
    columns: list[str] = field(default_factory=list)
    # (first, last) timestamp when the loader already knows it.
    ts_range: tuple[datetime, datetime] | None = None
    streamed: bool = False
    scan: Scan | None = None
    # How `dimensions` were chosen, with the columns that were skipped and why.
    dimension_choice: DimensionChoice | None = None

    table: str = TRANSACTIONS_TABLE
    # Window cubes by name, with the connection that holds their (temporary) tables: a copy
    # of the dataset on another cursor (chat) shares this dict but not those tables.
    _cubes: dict[str, tuple[duckdb.DuckDBPyConnection, LeafCube]] = field(
        default_factory=dict, repr=False
    )

    def leaf_cube(
        self, baseline: TimeWindow, current: TimeWindow, *, cube: str = LEAF_CUBE
    ) -> LeafCube:
        """The leaf cube of two windows over `dimensions`, built once per windows and name.

        Summed from the load's pass when that was cut at the windows' bounds (no read of
        the file), else built by one more pass over `transactions`.
        """
        found = self._cubes.get(cube)
        if (
            found is not None
            and found[0] is self.conn
            and found[1].serves(self.dimensions, baseline, current)
        ):
            return found[1]
        if self.scan is not None and self.scan.buckets.serves(baseline, current):
            made = window_cube(
                self.conn, self.scan.cube, self.scan.buckets, self.dimensions,
                baseline, current, cube=cube, repeated=self.scan.repeated_leaves,
            )  # fmt: skip
        else:
            made = build_leaf_cube(
                self.conn, self.table, self.dimensions, baseline, current, cube=cube
            )
        self._cubes[cube] = (self.conn, made)
        return made


def load(
    path: Path,
    *,
    lenient: bool = False,
    dimensions: list[str] | None = None,
    quarantine_dir: Path | None = None,
    baseline: TimeWindow | None = None,
    current: TimeWindow | None = None,
    cache: ScanCache | None = None,
) -> Dataset:
    """Load a transactions file or a scenario folder; raise DataError on bad input.

    Strict by default: the first row that breaks CONTRACT.md section 1 (in file order)
    raises, naming file, line and column. With `lenient`, bad rows are left out and
    written whole, with `line` and `reason`, to `<stem>.quarantine.csv` beside the file
    (or in `quarantine_dir`); files that cannot be read still raise. `dimensions` are
    `--dimensions` as given: a list replaces the dimensions, `+name`/`-name` adjust the
    scenario's or the defaults, which include the file's extra columns of sensible
    cardinality (tools/dimensions.py; the choice is `Dataset.dimension_choice`).

    `baseline` and `current` are the windows the caller will observe, if it knows them
    (else the scenario's, else those inferred from the file's first and last rows): the
    load's one pass is cut at their bounds, so observing them needs no second pass.

    With a `cache` (`tools/scan_cache.py`), a file loaded before is not read again, and
    one that only grew is read for its new rows only.
    """
    path = Path(path)
    file, scenario = _resolve(path)
    kind = file_kind(file)

    conn = duckdb.connect()
    try:
        # Offsets in timestamps are converted with the session time zone; naive ones are
        # taken as UTC. Insertion order is what ties a rowid to its line in the file.
        conn.execute(sql.SESSION_UTC)
        conn.execute(sql.PRESERVE_ORDER)
        conn.execute(sql.NO_PROGRESS_BAR)
        file_columns, types = _file_columns(conn, file, kind)
        extras = _check_columns(file, kind, file_columns)
        present = set(file_columns)
        choice = _choose_dimensions(
            conn, file, kind, file_columns, _source(kind, file, file_columns), dimensions, scenario
        )
        dims = list(choice.used)
        _check_dimensions(file, dims, extras)
        public = [*CONTRACT_COLUMNS, *extras]
        native = _native_columns(kind, types)

        def checked_rows(target: Path) -> str:
            """The checked rows of `file`, or of another file of the same shape."""
            src, src_params = _source(kind, target, file_columns, native)
            return sql.checked_rows(
                sql.inline_parameters(src, src_params),
                list(CONTRACT_COLUMNS), present, extras, native,
            )  # fmt: skip

        conn.execute(sql.streamed_view(checked_rows(file)))
        rows_of = ScanSource(
            file=file,
            kind=kind,
            columns=file_columns,
            dimensions=dims,
            buckets=_buckets(conn, file, kind, file_columns, scenario, baseline, current),
            checked=lambda target: (
                sql.STREAMED_VIEW if target == file else f"({checked_rows(target)})"
            ),
            ids=kind in ROW_FILES,
        )
        try:
            found = read_once(conn, rows_of) if cache is None else cache.scan(conn, rows_of)
        except duckdb.Error as exc:
            raise _read_error(file, kind, exc) from None
        if found.rows == 0:
            raise DataError(file, "no transactions")
        if found.clean:
            conn.execute(sql.streamed_transactions_view(TRANSACTIONS_TABLE, public))
            return Dataset(
                conn=conn,
                source=file,
                dimensions=dims,
                rows=found.rows,
                scenario=scenario,
                columns=[*public, LINE_COLUMN],
                ts_range=found.ts_range,
                streamed=True,
                scan=found,
                dimension_choice=choice,
            )
        # A bad row, or two equal id hashes: copy the rows in, where the first bad line is
        # named (or the bad rows quarantined) and equal hashes are told from equal ids.
        conn.execute(sql.DROP_STREAMED_VIEW)
        source, params = _source(kind, file, file_columns)
        try:
            conn.execute(
                sql.load_transactions(source, list(CONTRACT_COLUMNS), present, extras), params
            )
        except duckdb.Error as exc:
            raise _read_error(file, kind, exc) from None
        offset = _LINE_OFFSET[kind]
        total, bad = _find_bad_rows(conn, file, offset, lenient=lenient)
        quarantine_path = None
        if bad:
            quarantine_path = _write_quarantine(conn, file, file_columns, offset, quarantine_dir)
            if bad == total:
                raise DataError(
                    file, f"no valid transactions: all {bad} rows quarantined to {quarantine_path}"
                )
        conn.execute(sql.transactions_view(TRANSACTIONS_TABLE, public, offset, good_only=bad > 0))
    except BaseException:
        conn.close()
        raise
    return Dataset(
        conn=conn,
        source=file,
        dimensions=dims,
        rows=total - bad,
        scenario=scenario,
        quarantined=bad,
        quarantine_path=quarantine_path,
        columns=[*public, LINE_COLUMN],
        dimension_choice=choice,
    )


def file_kind(file: Path) -> FileKind:
    """The format of a transactions file, from its extension."""
    name = file.name.lower()
    for ext, kind in FILE_KINDS.items():
        if name.endswith(ext):
            return kind
    raise DataError(file, "unsupported file type (expected .csv, .csv.gz, .parquet or .jsonl)")


def quarantine_file(file: Path, quarantine_dir: Path | None = None) -> Path:
    """Where lenient mode writes the bad rows of `file`: `<stem>.quarantine.csv`."""
    name = file.name
    for ext in FILE_KINDS:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return (quarantine_dir or file.parent) / f"{name}.quarantine.csv"


def read_scenario(file: Path) -> ScenarioSpec:
    """Parse a `scenario.json`; DataError names the JSON line or the failing field.

    The one reader of scenario files (the loader, the eval harness and the chat eval use
    it), through `read_json_model`.
    """
    return read_json_model(file, ScenarioSpec, missing="a scenario folder needs scenario.json")


ModelT = TypeVar("ModelT", bound=BaseModel)


def read_json_model(file: Path, model: type[ModelT], *, missing: str = "no such file") -> ModelT:
    """A JSON file validated as `model`; DataError names the file and the JSON line or field.

    It reads regular files only, of at most `MAX_SCENARIO_BYTES`, so a link to a device or
    a pipe cannot hang it or fill memory, and a document nested too deeply is an error, not
    a crash.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DataError(file, f"missing: {missing}") from None
    except OSError as exc:
        raise DataError(file, f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(file, "not a regular file (expected a JSON file)")
        try:
            data = fh.read(MAX_SCENARIO_BYTES + 1)
        except OSError as exc:
            raise DataError(file, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise DataError(file, f"larger than {MAX_SCENARIO_BYTES >> 20} MiB: not a {model.__name__}")
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(file, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(file, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise DataError(file, "invalid JSON: nested too deeply") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise DataError(file, f"field {first_error(exc)}") from None


def _resolve(path: Path) -> tuple[Path, ScenarioSpec | None]:
    if path.is_dir():
        scenario = read_scenario(path / SCENARIO_FILE)
        found = [path / name for name in TRANSACTIONS_FILES if (path / name).is_file()]
        if not found:
            raise DataError(
                path, f"no transactions file (expected one of {', '.join(TRANSACTIONS_FILES)})"
            )
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DataError(path, f"more than one transactions file ({names}); keep one")
        return found[0], scenario
    if not path.exists():
        raise DataError(path, "no such file or folder")
    return path, None


def _file_columns(
    conn: duckdb.DuckDBPyConnection, file: Path, kind: FileKind
) -> tuple[list[str], dict[str, str]]:
    """The file's column names in order, and their DuckDB types where the file has types."""
    if kind in ("csv", "csv.gz"):
        return _csv_header(file, gz=kind == "csv.gz"), {}
    if kind == "jsonl" and not _has_content(file):
        raise DataError(file, "no transactions (empty file)")
    describe = sql.JSONL_DESCRIBE if kind == "jsonl" else sql.PARQUET_DESCRIBE
    try:
        rows = conn.execute(describe, {"path": str(file)}).fetchall()
    except duckdb.Error as exc:
        raise _read_error(file, kind, exc) from None
    if kind == "jsonl" and [(r[0], r[1]) for r in rows] == [("json", "JSON")]:
        # DuckDB's answer when the records are not all objects: say which line is not.
        found = _first_bad_json_line(file)
        if found is not None:
            raise DataError(file, found[1], line=found[0])
    names = [str(r[0]) for r in rows]
    return names, ({str(r[0]): str(r[1]) for r in rows} if kind == "parquet" else {})


def _native_columns(kind: FileKind, types: dict[str, str]) -> dict[str, str]:
    """The contract columns a typed file holds in a type the checks can take as it is."""
    if kind != "parquet":
        return {}
    return {c: types[c] for c, ok in sql.NATIVE_TYPES.items() if types.get(c) in ok}


def _buckets(
    conn: duckdb.DuckDBPyConnection,
    file: Path,
    kind: FileKind,
    columns: list[str],
    scenario: ScenarioSpec | None,
    baseline: TimeWindow | None,
    current: TimeWindow | None,
) -> TimeBuckets:
    """Where to cut the load's cube: at the windows observe will most likely compare.

    The caller's, else the scenario's, else those inferred from a guess of the file's
    time span (its first and last rows, or Parquet's statistics). A wrong guess costs a
    second pass later (`Dataset.leaf_cube`), never a wrong count.
    """
    if scenario is not None:
        baseline = baseline or scenario.baseline_window
        current = current or scenario.current_window
    if baseline is None or current is None:
        span = _guess_span(conn, file, kind, columns)
        inferred = windows_for_span(*span) if span is not None else None
        if inferred is not None:
            baseline, current = baseline or inferred[0], current or inferred[1]
    return TimeBuckets.of(*(w for w in (baseline, current) if w is not None))


_TAIL_BYTES = 1 << 16


def _guess_span(
    conn: duckdb.DuckDBPyConnection, file: Path, kind: FileKind, columns: list[str]
) -> tuple[datetime, datetime] | None:
    """The timestamps of the first and last rows (files are mostly in time order)."""
    try:
        if kind == "parquet":
            row = conn.execute(sql.PARQUET_TS_SPAN, {"path": str(file)}).fetchone()
            if row and isinstance(row[0], datetime) and isinstance(row[1], datetime):
                return row[0], row[1]
            return None
        if kind not in ("csv", "jsonl"):
            return None  # the end of a compressed file is not at hand
        with open(file, "rb") as fh:
            lines = [fh.readline(_MAX_HEADER_BYTES) for _ in range(2)]
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = [t for t in fh.read(_TAIL_BYTES).splitlines() if t.strip()]
        first = lines[1] if kind == "csv" else lines[0]
        if not tail:
            return None
        return _row_ts(first, kind, columns), _row_ts(tail[-1], kind, columns)
    except (OSError, ValueError, OverflowError, KeyError, IndexError, TypeError, duckdb.Error):
        return None


def _row_ts(raw: bytes, kind: FileKind, columns: list[str]) -> datetime:
    text = raw.decode("utf-8")
    value = (
        next(csv.reader([text]))[columns.index("ts")] if kind == "csv" else json.loads(text)["ts"]
    )
    return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))


def _csv_header(file: Path, *, gz: bool) -> list[str]:
    try:
        with gzip.open(file, "rb") if gz else open(file, "rb") as fh:
            first = fh.readline(_MAX_HEADER_BYTES)
    except gzip.BadGzipFile:
        raise DataError(file, "not a gzip file (rename it to .csv if it is plain text)") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(file, f"cannot read: {exc}") from None
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(file, "the header is not UTF-8 text", line=1) from None
    if not text.strip():
        raise DataError(file, "no transactions (empty file, no header row)", line=1)
    names = [n.strip() for n in next(csv.reader([text]))]
    for i, name in enumerate(names, 1):
        if not name:
            raise DataError(file, f"header field {i} is empty: every column needs a name", line=1)
    return names


def _has_content(file: Path) -> bool:
    with open(file, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return True
    return False


def _check_columns(file: Path, kind: FileKind, columns: list[str]) -> list[str]:
    """Structural checks; returns the extra (non-contract) columns in file order."""
    header_line = 1 if kind in ("csv", "csv.gz") else None
    seen: dict[str, str] = {}
    for name in columns:
        # DuckDB identifiers ignore case, so `Status` and `status` would collide.
        if name.lower() in seen:
            raise DataError(file, f"duplicate column {name!r}", line=header_line, column=name)
        seen[name.lower()] = name
        if name == LINE_COLUMN or name.lower().startswith(sql.INTERNAL_PREFIX):
            raise DataError(
                file,
                f"column name {name!r} is reserved by payops; rename the column",
                line=header_line,
                column=name,
            )
    for name in CONTRACT_COLUMNS:
        if name not in columns and name.lower() in seen:
            raise DataError(
                file, f"column {seen[name.lower()]!r} must be spelled {name!r}", column=name
            )
    listed = ", ".join(columns)
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            raise DataError(
                file, f"missing required column {name!r} (the file has: {listed})", column=name
            )
    return [c for c in columns if c not in CONTRACT_COLUMNS]


def _choose_dimensions(
    conn: duckdb.DuckDBPyConnection,
    file: Path,
    kind: FileKind,
    columns: list[str],
    scan: tuple[str, dict[str, object]],
    requested: list[str] | None,
    scenario: ScenarioSpec | None,
) -> DimensionChoice:
    """The dimensions of this load (tools/dimensions.py), profiling the head of the file."""
    listed = scenario.dimensions if scenario is not None else None
    try:
        probe = columns_to_probe(columns, requested, listed)
        profiles: dict[str, ColumnProfile] = {}
        if probe:
            source, params = scan
            try:
                row = conn.execute(
                    sql.dimension_probe(source, probe), {**params, "probe_rows": PROBE_ROWS}
                ).fetchone()
            except duckdb.Error as exc:
                raise _read_error(file, kind, exc) from None
            if row is not None:
                for i, name in enumerate(probe):
                    non_empty, distinct = int(row[1 + 2 * i]), int(row[2 + 2 * i])
                    profiles[name] = ColumnProfile(int(row[0]), non_empty, distinct)
        return choose_dimensions(columns, requested, listed, profiles)
    except DimensionSpecError as exc:
        raise DataError(file, exc.reason, column=exc.column) from None


def _check_dimensions(file: Path, dims: list[str], extras: list[str]) -> None:
    """Every dimension must be a string column of the file (or an optional contract one)."""
    available = [*CONTRACT_COLUMNS, *extras]
    for dim in dims:
        if dim in NOT_DIMENSIONS:
            raise DataError(file, f"{dim!r} cannot be a segment dimension", column=dim)
        if dim not in available:
            raise DataError(
                file,
                f"dimension {dim!r} is not a column (columns: {', '.join(available)})",
                column=dim,
            )


def _source(
    kind: FileKind, file: Path, columns: list[str], native: dict[str, str] | None = None
) -> tuple[str, dict[str, object]]:
    """The scan of `file` as a relation of non-NULL VARCHAR columns, and its parameters.

    Columns in `native` keep their own type (see `sql.checked_rows`).
    """
    as_text = {c: "VARCHAR" for c in columns}
    if kind in ("csv", "csv.gz"):
        params: dict[str, object] = {
            "path": str(file),
            "columns": as_text,
            "names": columns,
            "compression": "gzip" if kind == "csv.gz" else "none",
            "buffer_size": CSV_BUFFER_BYTES,
        }
        return sql.CSV_SCAN, params
    scan = sql.JSONL_SCAN if kind == "jsonl" else sql.PARQUET_SCAN
    params = {"path": str(file)}
    if kind == "jsonl":
        params["columns"] = as_text
    return f"(SELECT {sql.varchar_columns(columns, native)} FROM {scan})", params


def _count(conn: duckdb.DuckDBPyConnection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _find_bad_rows(
    conn: duckdb.DuckDBPyConnection, file: Path, offset: int, *, lenient: bool
) -> tuple[int, int]:
    """Mark duplicates and raise on the first bad row in strict mode; (rows, bad rows)."""
    row = conn.execute(sql.LOAD_STATS).fetchone()
    total, bad, distinct = (int(v) for v in row) if row else (0, 0, 0)
    if total == 0:
        raise DataError(file, "no transactions")
    if bad == 0 and distinct == total:
        return total, 0  # the common case: one scan of the loaded table and done
    if distinct != total:
        # Equal hashes, so maybe equal ids: find the exact duplicates. Strict mode only
        # needs those ahead of the first bad row, since that one is reported otherwise.
        before = total
        if bad and not lenient:
            before = _count(conn, sql.FIRST_BAD_ROWID)
        conn.execute(sql.MARK_DUPLICATES, {"before": before})
        bad = _count(conn, sql.BAD_ROWS)
    if bad and not lenient:
        first = conn.execute(sql.first_error(offset)).fetchone()
        if first is not None:
            raise DataError(file, str(first[2]), line=int(first[0]), column=str(first[1]))
    return total, bad


def _write_quarantine(
    conn: duckdb.DuckDBPyConnection,
    file: Path,
    file_columns: list[str],
    offset: int,
    quarantine_dir: Path | None,
) -> Path:
    """Write the bad rows beside the file; whole or not at all (`atomic_path`)."""
    target = quarantine_file(file, quarantine_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(target, f"cannot write the quarantine file: {exc}") from None
    with atomic_path(target) as tmp:
        conn.execute(sql.quarantine_copy(file_columns, offset), {"path": str(tmp)})
    return target


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_COLUMN_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _read_error(file: Path, kind: FileKind, exc: duckdb.Error) -> DataError:
    """A DataError for a file DuckDB could not read, with the line where it says.

    Errors that mean a bug in payops' own SQL are raised as they are, not blamed on the file.
    """
    if isinstance(exc, _PROGRAMMING_ERRORS):
        raise exc
    text = str(exc)
    headline = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    headline = re.sub(r"^[A-Za-z ]*Error: ", "", headline)
    if kind == "jsonl":
        found = _first_bad_json_line(file)
        if found is not None:
            return DataError(file, found[1], line=found[0])
        return DataError(file, f"cannot read JSON Lines: {headline}")
    if kind == "parquet":
        return DataError(file, f"cannot read Parquet: {headline}")
    line_match = _CSV_LINE.search(text)
    line = int(line_match.group(1)) if line_match else None
    count = _COLUMN_COUNT.search(text)
    if count:
        reason = f"expected {count.group(1)} fields, found {count.group(2)}"
    elif "unterminated quote" in text:
        reason = "unterminated quoted value"
    elif "Invalid unicode" in text:
        reason = "not valid UTF-8 text"
    else:
        reason = f"malformed CSV: {headline}" if line else f"cannot read CSV: {headline}"
    return DataError(file, reason, line=line)


def _first_bad_json_line(file: Path) -> tuple[int, str] | None:
    # DuckDB's line numbers for malformed JSON are not reliable; the error path can
    # afford to find the line itself.
    with open(file, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return number, "not valid UTF-8 text"
            except json.JSONDecodeError as exc:
                return number, f"invalid JSON: {exc.msg} (column {exc.colno})"
            if not isinstance(value, dict):
                return number, "not a JSON object"
    return None
