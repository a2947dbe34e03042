"""Named, parameterised queries: the statements of the loader, observe, chat and the
stores (DuckDB and SQLite) live here.

Three families are composed next to the definitions they are made of, and only there:
the leaf cube's aggregates in tools/metrics.py (their column lists are the window
counters defined beside them); the one pass over a file that builds it (tools/scan.py,
with the relation tools/data.py puts over the file, and the scan cache's reads of its
parts in tools/scan_cache.py); and the synthetic generator's row-drawing pipeline in
tools/generate.py (one statement built from the incident modules' injections). Nothing
else writes SQL.

User values never go into SQL text as they are: they are bound as parameters, or, in DDL
that cannot take parameters (a view over a file), written with `literal`. Identifiers
that come from data (dimension and column names) are quoted with `ident`.
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeVar


def ident(name: str) -> str:
    """Quote an identifier (a column name from user data) for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def segment_filter(segment: Mapping[str, str], prefix: str = "seg") -> tuple[str, dict[str, str]]:
    """A WHERE fragment matching `segment` and its named parameters (`TRUE` for all traffic).

    Dimension names are quoted identifiers; values are bound as `$<prefix><i>`.
    """
    if not segment:
        return "TRUE", {}
    clauses: list[str] = []
    params: dict[str, str] = {}
    for i, (dim, value) in enumerate(sorted(segment.items())):
        name = f"{prefix}{i}"
        clauses.append(f"{ident(dim)} = ${name}")
        params[name] = value
    return " AND ".join(clauses), params


# --- routes (tools/routes.py) ----------------------------------------------------------
# Format with `table` (ident) and `where` (segment_filter on the segment WITHOUT its
# processor dimension). Bind $baseline_start, $baseline_end, $current_start, $current_end
# (naive UTC; windows are half-open) plus the segment parameters.
ROUTE_STATS = """
SELECT processor,
       count(*) FILTER (WHERE ts >= $current_start AND ts < $current_end) AS attempts,
       count(*) FILTER (WHERE ts >= $current_start AND ts < $current_end
                          AND status = 'approved') AS approved,
       count(*) FILTER (WHERE ts >= $current_start AND ts < $current_end
                          AND status = 'error') AS errors,
       count(*) FILTER (WHERE ts >= $baseline_start AND ts < $baseline_end) AS baseline_attempts,
       count(*) FILTER (WHERE ts >= $baseline_start AND ts < $baseline_end
                          AND status = 'approved') AS baseline_approved
FROM {table}
WHERE ({where})
  AND ((ts >= $baseline_start AND ts < $baseline_end)
       OR (ts >= $current_start AND ts < $current_end))
GROUP BY processor
ORDER BY processor
"""

# Format with `table` and `where` (segment_filter on the FULL segment). Bind $current_start,
# $current_end and the segment parameters. `decline_codes` is a MAP code -> failures (NULL
# when the segment has none); `total_attempts` counts every current-window attempt.
SEGMENT_DETAIL = """
SELECT count(*) AS total_attempts,
       count(*) FILTER (WHERE ({where}) AND three_ds = 'failed') AS three_ds_failed,
       histogram(decline_code) FILTER (WHERE ({where}) AND status <> 'approved'
                                         AND decline_code <> '') AS decline_codes
FROM {table}
WHERE ts >= $current_start AND ts < $current_end
"""

# The same two answers from a leaf cube (metrics.LeafCube), when the segment's dimensions,
# and `processor`, are dimensions of the cube: no pass over the transactions. Format with
# `counts` / `cube` (the cube's tables), `where` as above, and the counter columns
# `attempts`, `approved`, `errors`, `three_ds_failed` of the current window and
# `baseline_attempts`, `baseline_approved` (metrics.counter_column).
ROUTE_STATS_FROM_CUBE = """
SELECT processor,
       coalesce(sum({attempts}), 0) AS attempts,
       coalesce(sum({approved}), 0) AS approved,
       coalesce(sum({errors}), 0) AS errors,
       coalesce(sum({baseline_attempts}), 0) AS baseline_attempts,
       coalesce(sum({baseline_approved}), 0) AS baseline_approved
FROM {counts}
WHERE ({where})
GROUP BY processor
ORDER BY processor
"""
SEGMENT_DETAIL_FROM_CUBE = """
SELECT coalesce(sum({attempts}), 0) AS total_attempts,
       coalesce(sum({three_ds_failed}) FILTER (WHERE ({where})), 0) AS three_ds_failed
FROM {counts}
"""
SEGMENT_CODES_FROM_CUBE = """
SELECT code, sum(n) FROM {cube}
WHERE is_current AND status <> 'approved' AND code <> '' AND ({where})
GROUP BY code
"""


# --- investigation (tools/metrics.py: timeline, dimension_values) ------------------------
# Format with `table` (ident) and `where` (segment_filter). Bind $minutes (bucket length),
# $origin (where buckets start), $start and $end (naive UTC, half-open) and the segment's
# parameters. `all_attempts` counts every attempt of the bucket, in the segment or not.
TIMELINE = """
SELECT time_bucket(to_minutes($minutes), ts, $origin) AS bucket,
       count(*) FILTER (WHERE {where}) AS attempts,
       count(*) FILTER (WHERE ({where}) AND status = 'approved') AS approved,
       count(*) FILTER (WHERE ({where}) AND status = 'error') AS errors,
       count(*) AS all_attempts
FROM {table}
WHERE ts >= $start AND ts < $end
GROUP BY bucket
ORDER BY bucket
"""


# --- dimension probe (tools/dimensions.py) ----------------------------------------------


def dimension_probe(source: str, columns: Sequence[str]) -> str:
    """Rows read, then per column its non-empty rows and distinct non-empty values, over
    the first $probe_rows rows of `source` (a relation of non-NULL VARCHAR columns).

    LIMIT lets the scan stop at the head of the file: the probe never reads it all.
    """
    parts = "".join(
        f", count(nullif({ident(c)}, '')), count(DISTINCT nullif({ident(c)}, ''))"
        for c in columns
    )
    cols = ", ".join(ident(c) for c in columns)
    return f"SELECT count(*){parts} FROM (SELECT {cols} FROM {source} LIMIT $probe_rows)"


# Whether this connection holds a temporary table (a leaf cube it built). Bind $name.
TEMP_TABLE_EXISTS = "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = $name"


def ts_range(table: str) -> str:
    """The first and last timestamp of a transactions table."""
    return f"SELECT min(ts), max(ts) FROM {ident(table)}"


def dimension_values(table: str, dimensions: list[str]) -> str:
    """Attempts per value of each dimension, one grouping set per dimension (one scan).

    Columns: GROUPING() id, the dimensions (NULL where rolled up), attempts.
    """
    cols = ", ".join(ident(d) for d in dimensions)
    sets = ", ".join(f"({ident(d)})" for d in dimensions)
    return (
        f"SELECT GROUPING({cols}) AS gid, {cols}, count(*) AS attempts "
        f"FROM {ident(table)} GROUP BY GROUPING SETS ({sets})"
    )


# ---------------------------------------------------------------------------------------
# SQLite state stores: the action ledger (tools/ledger.py), the approvals (tools/approvals.py),
# the simulator's journal (tools/executor.py) and the learning store (tools/learning.py). The
# DML is plain SQL that PostgreSQL also runs (ON CONFLICT ... DO NOTHING, no SQLite-only
# functions); only the placeholder spelling differs (`:name` here, `%(name)s` in psycopg).
# The DDL, PRAGMAs and BEGIN IMMEDIATE are SQLite's own.

# WAL lets readers run beside one writer; BEGIN IMMEDIATE takes the write lock up front, so
# a busy writer waits out busy_timeout instead of failing when a read would turn into a write.
SQLITE_WAL = "PRAGMA journal_mode=WAL"
# FULL syncs every commit (survives power loss); NORMAL syncs at checkpoints (survives a
# killed process, may lose the last commits on power loss).
SQLITE_SYNC_FULL = "PRAGMA synchronous=FULL"
SQLITE_SYNC_NORMAL = "PRAGMA synchronous=NORMAL"
SQLITE_BEGIN_WRITE = "BEGIN IMMEDIATE"
SQLITE_COMMIT = "COMMIT"
SQLITE_ROLLBACK = "ROLLBACK"
SQLITE_INTEGRITY_CHECK = "PRAGMA integrity_check"
SQLITE_BUSY_TIMEOUT_S = 30.0
# SQLITE_BUSY and SQLITE_LOCKED: another connection holds the lock we need.
_SQLITE_BUSY_CODES = frozenset({5, 6})

T = TypeVar("T")


class StoreBusyError(Exception):
    """A state database stayed locked by other processes for longer than the busy timeout."""

    def __init__(self, path: Path | str, waited_s: float) -> None:
        self.path = Path(path)
        super().__init__(
            f"{path}: still locked by another payops process after {waited_s:.0f} s; try again"
        )


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _SQLITE_BUSY_CODES
    text = str(exc)
    return "locked" in text or "busy" in text


def sqlite_retry(
    path: Path | str, op: Callable[[], T], *, timeout_s: float = SQLITE_BUSY_TIMEOUT_S
) -> T:
    """Run `op`, retrying with backoff while SQLite reports the database busy or locked.

    busy_timeout covers ordinary writes, but not every lock: switching a new file to WAL
    and the first DDL can fail at once when several processes open it together. Raises
    StoreBusyError (one line, naming the file) when the database stays locked.
    """
    started = time.monotonic()
    delay = 0.005
    while True:
        try:
            return op()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            waited = time.monotonic() - started
            if waited >= timeout_s:
                raise StoreBusyError(path, waited) from exc
        # Jitter, so processes that collided once do not collide again in step.
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


def sqlite_connect(path: Path, *, durable: bool, autocommit: bool = True) -> sqlite3.Connection:
    """Open a state database in WAL mode with a busy timeout.

    `durable` syncs every commit (ledger, approvals, journal); otherwise commits survive a
    killed process but not a power cut (the learning store). With `autocommit` (our
    stores) transactions are explicit: use `sqlite_write` for every write. Without it the
    connection keeps Python's implicit transactions (what LangGraph's SqliteSaver expects).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: the stores serialise access with their own lock.
    if autocommit:
        conn = sqlite3.connect(
            path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        sqlite_retry(path, lambda: conn.execute(SQLITE_WAL))
        conn.execute(SQLITE_SYNC_FULL if durable else SQLITE_SYNC_NORMAL)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def sqlite_write(conn: sqlite3.Connection, path: Path | str = "") -> Iterator[sqlite3.Connection]:
    """One write transaction: committed whole when the block ends, rolled back on error.

    Taking the write lock waits out other writers (StoreBusyError naming `path` if it
    cannot get it).
    """
    sqlite_retry(path, lambda: conn.execute(SQLITE_BEGIN_WRITE))
    try:
        yield conn
    except BaseException:
        conn.execute(SQLITE_ROLLBACK)
        raise
    conn.execute(SQLITE_COMMIT)


# The schema version of every component kept in a file: each store creates its tables once,
# in one transaction, and later opens only read its version.
SCHEMA_CREATE = """CREATE TABLE IF NOT EXISTS payops_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""
SCHEMA_VERSION_GET = "SELECT version FROM payops_schema WHERE component = :component"
SCHEMA_VERSION_SET = """INSERT INTO payops_schema (component, version)
VALUES (:component, :version)
ON CONFLICT (component) DO UPDATE SET version = excluded.version"""


class SchemaError(Exception):
    """A state database written by a newer payops than this one."""


@dataclass(frozen=True)
class Schema:
    """A component's tables as numbered migrations: `migrations[i]` takes version i to i+1.

    Version 0 is a file without the component, or one written before versions existed (so
    the first migration uses IF NOT EXISTS).
    """

    component: str
    migrations: tuple[tuple[str, ...], ...]

    @property
    def version(self) -> int:
        """The version this code writes."""
        return len(self.migrations)


def schema_version(conn: sqlite3.Connection, component: str) -> int:
    """The component's version in this file (0 when it has none)."""
    try:
        row = conn.execute(SCHEMA_VERSION_GET, {"component": component}).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    return 0 if row is None else int(row[0])


def ensure_schema(
    conn: sqlite3.Connection,
    path: Path,
    schema: Schema,
    migrate: Callable[[], None] | None = None,
) -> None:
    """Bring the file to `schema.version`, once, whoever opens it first.

    A current file costs one read. Otherwise one write transaction re-reads the version
    (another process may have just migrated) and applies the missing migrations, then
    `migrate` if given (DDL a library owns, e.g. LangGraph's checkpoint tables).
    """

    def current() -> int:
        found = schema_version(conn, schema.component)
        if found > schema.version:
            raise SchemaError(
                f"{path}: {schema.component} schema version {found} is newer than this "
                f"payops understands ({schema.version}); upgrade payops"
            )
        return found

    if sqlite_retry(path, current) == schema.version:
        return

    def upgrade() -> None:
        with sqlite_write(conn, path):
            conn.execute(SCHEMA_CREATE)
            for statements in schema.migrations[current() :]:
                for statement in statements:
                    conn.execute(statement)
            if migrate is not None:
                migrate()
            conn.execute(
                SCHEMA_VERSION_SET, {"component": schema.component, "version": schema.version}
            )

    sqlite_retry(path, upgrade)


class StoreHandle(Protocol):
    """What every state store is: closed when done, usable as a context manager."""

    def close(self) -> None:
        """Release the storage."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SqliteStore:
    """A SQLite file in WAL mode shared by threads (one lock) and processes (SQLite's own
    locking): the connection, its schema, and closing it; the stores build on it."""

    def __init__(self, path: Path, *, durable: bool, schema: Schema) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite_connect(path, durable=durable)
        try:
            ensure_schema(self._conn, path, schema)
        except BaseException:
            self._conn.close()
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # One write transaction under the store's lock (waits out other processes).
        with self._lock, sqlite_write(self._conn, self.path) as conn:
            yield conn

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# The action ledger: one row per idempotency key. A claim has an owner (the process that
# executes it) and a lease (until when that owner is presumed to be working on it).
LEDGER_SCHEMA = Schema(
    "action_ledger",
    (
        (
            """CREATE TABLE IF NOT EXISTS action_ledger (
    idempotency_key TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'executed')),
    outcome TEXT,
    claimed_at TEXT NOT NULL,
    executed_at TEXT
)""",
            "CREATE INDEX IF NOT EXISTS action_ledger_status ON action_ledger (status, claimed_at)",
        ),
        (
            "ALTER TABLE action_ledger ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
            # '' sorts before every timestamp: a claim from before leases is expired.
            "ALTER TABLE action_ledger ADD COLUMN lease_until TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX IF NOT EXISTS action_ledger_claimed_at ON action_ledger (claimed_at)",
        ),
    ),
)
LEDGER_COLUMNS = (
    "idempotency_key, thread_id, scenario_id, action, params, status, outcome, "
    "claimed_at, executed_at, owner, lease_until"
)
LEDGER_CLAIM = """INSERT INTO action_ledger
    (idempotency_key, thread_id, scenario_id, action, params, status, claimed_at, owner,
     lease_until)
VALUES (:key, :thread_id, :scenario_id, :action, :params, 'claimed', :now, :owner,
    :lease_until)
ON CONFLICT (idempotency_key) DO NOTHING"""
LEDGER_RECORD_OUTCOME = """UPDATE action_ledger
SET status = 'executed', outcome = :outcome, executed_at = :now
WHERE idempotency_key = :key AND status = 'claimed'"""
LEDGER_GET = f"SELECT {LEDGER_COLUMNS} FROM action_ledger WHERE idempotency_key = :key"
LEDGER_RECENT = f"""SELECT {LEDGER_COLUMNS} FROM action_ledger
ORDER BY claimed_at DESC, idempotency_key LIMIT :limit"""
# Compare-and-set: the claim passes to :owner only if nobody took it since it was read.
LEDGER_TAKE_OVER = """UPDATE action_ledger SET owner = :owner, lease_until = :lease_until
WHERE idempotency_key = :key AND status = 'claimed'
  AND owner = :previous_owner AND lease_until = :previous_lease"""
# The owner gives its lease up (its executor call failed): anyone may reconcile at once.
LEDGER_RELEASE = """UPDATE action_ledger SET lease_until = :now
WHERE idempotency_key = :key AND status = 'claimed' AND owner = :owner"""
# The owner drops a claim whose action the executor confirmed never happened.
LEDGER_WITHDRAW = """DELETE FROM action_ledger
WHERE idempotency_key = :key AND status = 'claimed' AND owner = :owner"""
# Everything claimed since :since, claimed or executed: what pacing counts.
LEDGER_HISTORY = f"""SELECT {LEDGER_COLUMNS} FROM action_ledger
WHERE claimed_at >= :since ORDER BY claimed_at, idempotency_key"""

# Approvals: one row per paused thread; answering is a compare-and-set on 'pending'.
APPROVALS_SCHEMA = Schema(
    "approvals",
    (
        (
            """CREATE TABLE IF NOT EXISTS approvals (
    thread_id TEXT PRIMARY KEY,
    scenario_id TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    answered_by TEXT,
    reason TEXT,
    requested_at TEXT NOT NULL,
    answered_at TEXT
)""",
            "CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, requested_at)",
        ),
    ),
)
APPROVALS_COLUMNS = (
    "thread_id, scenario_id, request, status, answered_by, reason, requested_at, answered_at"
)
APPROVALS_REQUEST = """INSERT INTO approvals
    (thread_id, scenario_id, request, status, requested_at)
VALUES (:thread_id, :scenario_id, :request, 'pending', :now)
ON CONFLICT (thread_id) DO NOTHING"""
APPROVALS_ANSWER = """UPDATE approvals
SET status = :status, answered_by = :by, reason = :reason, answered_at = :now
WHERE thread_id = :thread_id AND status = 'pending'"""
APPROVALS_GET = f"SELECT {APPROVALS_COLUMNS} FROM approvals WHERE thread_id = :thread_id"
APPROVALS_PENDING = f"""SELECT {APPROVALS_COLUMNS} FROM approvals
WHERE status = 'pending' ORDER BY requested_at, thread_id"""

# The simulator's journal: what it applied, once per key, and how often it was asked to.
JOURNAL_SCHEMA = Schema(
    "simulator_journal",
    (
        (
            """CREATE TABLE IF NOT EXISTS simulator_journal (
    idempotency_key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    outcome TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    requests INTEGER NOT NULL
)""",
        ),
    ),
)
JOURNAL_GET = "SELECT outcome, requests FROM simulator_journal WHERE idempotency_key = :key"
JOURNAL_APPLY = """INSERT INTO simulator_journal
    (idempotency_key, action, params, outcome, applied_at, requests)
VALUES (:key, :action, :params, :outcome, :now, 1)"""
JOURNAL_REPEAT = """UPDATE simulator_journal SET requests = requests + 1
WHERE idempotency_key = :key"""

LEARNING_SCHEMA = Schema(
    "learning",
    (
        (
            """CREATE TABLE IF NOT EXISTS outcomes (
    id INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    incident_kind TEXT NOT NULL,
    action TEXT NOT NULL,
    segment TEXT NOT NULL,
    params TEXT NOT NULL,
    verdict TEXT NOT NULL,
    improvement REAL,
    "before" REAL,
    "after" REAL,
    success INTEGER,
    confidence REAL NOT NULL,
    reasoner TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
)""",
            "CREATE INDEX IF NOT EXISTS outcomes_recorded_at ON outcomes (recorded_at)",
            "CREATE INDEX IF NOT EXISTS outcomes_kind_action ON outcomes (incident_kind, action)",
        ),
    ),
)
# Column order of the table, of exports and of LEARNING_INSERT's parameters.
LEARNING_COLUMNS: tuple[str, ...] = (
    "id",
    "recorded_at",
    "scenario_id",
    "thread_id",
    "incident_kind",
    "action",
    "segment",
    "params",
    "verdict",
    "improvement",
    "before",
    "after",
    "success",
    "confidence",
    "reasoner",
    "idempotency_key",
)
LEARNING_INSERT = """INSERT INTO outcomes
    (recorded_at, scenario_id, thread_id, incident_kind, action, segment, params, verdict,
     improvement, "before", "after", success, confidence, reasoner, idempotency_key)
VALUES (:recorded_at, :scenario_id, :thread_id, :incident_kind, :action, :segment, :params,
    :verdict, :improvement, :before, :after, :success, :confidence, :reasoner,
    :idempotency_key)
ON CONFLICT (idempotency_key) DO NOTHING"""
LEARNING_PRUNE = "DELETE FROM outcomes WHERE recorded_at < :cutoff"
LEARNING_COUNT = "SELECT COUNT(*) FROM outcomes"
LEARNING_EXPORT = (
    "SELECT " + ", ".join(ident(c) for c in LEARNING_COLUMNS) + " FROM outcomes ORDER BY id"
)
# Aggregates of LEARNING_STATS_*: success is NULL unless the action was executed with a
# measured improvement, so AVG(success) is the success rate over executed actions only.
_LEARNING_AGGREGATES = """COUNT(*) AS n,
    COUNT(success) AS executed,
    AVG(success) AS success_rate,
    AVG(CASE WHEN success IS NOT NULL THEN improvement END) AS mean_improvement,
    MAX(CASE WHEN success IS NOT NULL THEN improvement END) AS best,
    MIN(CASE WHEN success IS NOT NULL THEN improvement END) AS worst"""
LEARNING_STATS_BY_ACTION = f"""SELECT NULL AS incident_kind, action, {_LEARNING_AGGREGATES}
FROM outcomes GROUP BY action ORDER BY action"""
LEARNING_STATS_BY_KIND = f"""SELECT incident_kind, NULL AS action, {_LEARNING_AGGREGATES}
FROM outcomes GROUP BY incident_kind ORDER BY incident_kind"""
LEARNING_STATS_BY_KIND_ACTION = f"""SELECT incident_kind, action, {_LEARNING_AGGREGATES}
FROM outcomes GROUP BY incident_kind, action ORDER BY incident_kind, action"""
# Per (incident_kind, action): executed outcomes, successes and mean improvement; the
# learning context the reasoner reads. Two statements rather than `:kind IS NULL OR ...`,
# which PostgreSQL cannot type.
_LEARNING_PRIORS = """SELECT incident_kind, action, COUNT(*) AS n, SUM(success) AS successes,
    AVG(improvement) AS mean_improvement
FROM outcomes WHERE success IS NOT NULL"""
LEARNING_PRIORS_ALL = (
    _LEARNING_PRIORS + "\nGROUP BY incident_kind, action ORDER BY incident_kind, action"
)
LEARNING_PRIORS_FOR_KIND = (
    _LEARNING_PRIORS
    + " AND incident_kind = :kind\nGROUP BY incident_kind, action ORDER BY incident_kind, action"
)


# --- transactions loader (tools/data.py) -------------------------------------------------
# One scan of the file into LOADED_TABLE: typed columns, an error code per row (NULL when
# the row is good) and, for bad rows only, the raw text of the columns that were cast, so
# messages and the quarantine file show what the user wrote. The `transactions` view
# exposes the good rows and their source `line` (rowid + offset: the table is built with
# insertion order preserved). Paths and column lists are bound parameters.
INTERNAL_PREFIX = "__payops"
LOADED_TABLE = "__payops_loaded"
_ERR = "__payops_err"
_DUP_OF = "__payops_dup_of"
_RAW = "__payops_raw_"

SESSION_UTC = "SET TimeZone = 'UTC'"
PRESERVE_ORDER = "SET preserve_insertion_order = true"
NO_PROGRESS_BAR = "SET enable_progress_bar = false"  # a library does not print

# Every column is read as text and parsed in SQL, so a bad value becomes a row error with
# its line instead of a reader failure. The dialect is explicit: the sniffer guesses wrong
# on small or irregular files (it falls back to one column). Strict mode rejects ragged rows.
# Bind $buffer_size too (data.CSV_BUFFER_BYTES).
CSV_SCAN = (
    "read_csv($path, columns = $columns, force_not_null = $names, auto_detect = false,"
    " header = true, delim = ',', quote = '\"', escape = '\"', strict_mode = true,"
    " compression = $compression, buffer_size = $buffer_size)"
)
JSONL_SCAN = "read_json($path, format = 'newline_delimited', columns = $columns)"
JSONL_DESCRIBE = "DESCRIBE SELECT * FROM read_json($path, format = 'newline_delimited')"
PARQUET_SCAN = "read_parquet($path)"
PARQUET_DESCRIBE = "DESCRIBE SELECT * FROM read_parquet($path)"
# The span of a Parquet file's `ts` from its statistics alone (a guess: nothing is checked).
PARQUET_TS_SPAN = """SELECT min(TRY_CAST(stats_min AS TIMESTAMPTZ)),
       max(TRY_CAST(stats_max AS TIMESTAMPTZ))
FROM parquet_metadata($path) WHERE path_in_schema = 'ts'"""

# Optional columns (CONTRACT.md section 1) and the value a file without them gets.
OPTIONAL_DEFAULTS: dict[str, str] = {
    "card_network": "''",
    "issuer_country": "''",
    "decline_code": "''",
    "three_ds": "''",
    "is_retry": "false",
}
_CAST_COLUMNS = ("ts", "amount_minor", "latency_ms", "is_retry")
_INTEGER_TEXT = r"'\s*[+-]?[0-9]+\s*'"


def _raw(col: str) -> str:
    return ident(_RAW + col)


def _shown(expr: str) -> str:
    # A value quoted for a message, cut so a runaway field cannot flood the terminal.
    return f"'''' || left({expr}, 80) || ''''"


def _not_integer(col: str) -> str:
    # TRY_CAST alone would take '1.5' (rounded), '1e3' and '0x10'. Plain digits print back
    # as they were read, which is cheaper to check than the regex the rest need.
    return (
        f"CASE WHEN {col} IS NULL THEN true WHEN CAST({col} AS VARCHAR) = {_raw(col)} THEN false"
        f" ELSE NOT regexp_full_match({_raw(col)}, {_INTEGER_TEXT}) END"
    )


def _empty_or(col: str, message: str) -> str:
    return f"CASE WHEN trim({_raw(col)}) = '' THEN 'empty value (required)' ELSE {message} END"


# Timestamps DuckDB parses but no datetime can hold (year 10000, years BC) are bad rows.
_FIRST_TS = "TIMESTAMP '0001-01-01 00:00:00'"
_PAST_LAST_TS = "TIMESTAMP '10000-01-01 00:00:00'"

# Row rules, checked in this order; a row reports the first it breaks:
# (code, column, condition on the typed row, message). A source that holds a column in a
# native type (Parquet's integers) is checked by NATIVE_CONDITIONS instead where the two
# differ: those decide good and bad exactly as the text of the value would.
ERR_DUPLICATE = 10
ROW_RULES: tuple[tuple[int, str, str, str], ...] = (
    (1, "txn_id", "txn_id = ''", "'empty txn_id'"),
    (
        2,
        "ts",
        "ts IS NULL OR NOT isfinite(ts)",
        _empty_or(
            "ts",
            f"'unparseable timestamp ' || {_shown(_raw('ts'))}"
            " || ' (expected ISO-8601, e.g. 2026-03-01T10:15:02Z)'",
        ),
    ),
    (
        11,
        "ts",
        f"ts < {_FIRST_TS} OR ts >= {_PAST_LAST_TS}",
        f"'timestamp out of range ' || {_shown(_raw('ts'))} || ' (years 1 to 9999)'",
    ),
    (
        3,
        "amount_minor",
        _not_integer("amount_minor"),
        _empty_or("amount_minor", f"'not an integer: ' || {_shown(_raw('amount_minor'))}"),
    ),
    (4, "amount_minor", "amount_minor < 0", f"'negative: ' || {_shown(_raw('amount_minor'))}"),
    (
        5,
        "status",
        "status NOT IN ('approved', 'declined', 'error')",
        f"'unknown value ' || {_shown('status')} || ' (expected approved, declined or error)'",
    ),
    (
        6,
        "latency_ms",
        _not_integer("latency_ms"),
        _empty_or("latency_ms", f"'not an integer: ' || {_shown(_raw('latency_ms'))}"),
    ),
    (7, "latency_ms", "latency_ms < 0", f"'negative: ' || {_shown(_raw('latency_ms'))}"),
    (
        8,
        "three_ds",
        "three_ds NOT IN ('', 'none', 'frictionless', 'challenge', 'failed')",
        f"'unknown value ' || {_shown('three_ds')}"
        " || ' (expected none, frictionless, challenge, failed or empty)'",
    ),
    (
        9,
        "is_retry",
        "is_retry IS NULL",
        f"'unknown value ' || {_shown(_raw('is_retry'))}"
        " || ' (expected true/false, 1/0 or yes/no)'",
    ),
)


# Condition of a rule on a column read natively; the text form's regex has no text to read.
NATIVE_CONDITIONS: dict[int, str] = {3: "amount_minor IS NULL", 6: "latency_ms IS NULL"}
# Columns a typed source can hand over as they are, by DuckDB type: anything else is read
# as text (so 1.5, or 2**64, is refused exactly as it is in a CSV).
NATIVE_TYPES: dict[str, frozenset[str]] = {
    "ts": frozenset({"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}),
    "amount_minor": frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT",
                               "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT", "UHUGEINT"}),
    "latency_ms": frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT",
                             "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT", "UHUGEINT"}),
    "is_retry": frozenset({"BOOLEAN"}),
}  # fmt: skip


def _error_column() -> str:
    whens = " ".join(f"WHEN {code} THEN '{col}'" for code, col, _, _ in ROW_RULES)
    return f"CASE {_ERR} {whens} WHEN {ERR_DUPLICATE} THEN 'txn_id' END"


def _error_reason(line_offset: int) -> str:
    whens = " ".join(f"WHEN {code} THEN {message}" for code, _, _, message in ROW_RULES)
    duplicate = (
        f"'duplicate txn_id ' || {_shown('txn_id')} || ' (first seen on line '"
        f" || ({_DUP_OF} + {int(line_offset)}) || ')'"
    )
    return f"CASE {_ERR} {whens} WHEN {ERR_DUPLICATE} THEN {duplicate} END"


def _is_retry(raw: str) -> str:
    # Exact spellings first: the nested lower(trim()) only runs for the odd ones out.
    return (
        f"CASE {raw} WHEN 'false' THEN false WHEN 'true' THEN true WHEN '' THEN false"
        f" ELSE CASE lower(trim({raw})) WHEN 'true' THEN true WHEN '1' THEN true"
        " WHEN 'yes' THEN true WHEN 'false' THEN false WHEN '0' THEN false"
        " WHEN 'no' THEN false WHEN '' THEN false END END"
    )


def _typed(col: str, present: set[str], native: Mapping[str, str]) -> str:
    q = ident(col)
    if col not in present:
        return f"{OPTIONAL_DEFAULTS[col]} AS {q}"
    if col in native:
        # A NULL amount or latency is refused like an empty one; a NULL flag is false. An
        # instant becomes its UTC wall time from its microseconds: a CAST would consult the
        # time zone for every row (on 10M rows, most of a second).
        typed = {
            "ts": "make_timestamp(epoch_us(r.ts))"
            if native[col] == "TIMESTAMP WITH TIME ZONE"
            else "r.ts",
            "is_retry": "coalesce(r.is_retry, false)",
        }.get(col, f"TRY_CAST(r.{q} AS BIGINT)")
        return f"{typed} AS {q}"
    if col == "ts":
        # A trailing Z (the contract's form) parses without time-zone arithmetic; offsets
        # go through TIMESTAMPTZ, which the UTC session turns into UTC.
        return (
            "CASE WHEN ends_with(r.ts, 'Z') THEN TRY_CAST(r.ts AS TIMESTAMP)"
            " ELSE TRY_CAST(TRY_CAST(r.ts AS TIMESTAMPTZ) AS TIMESTAMP) END AS ts"
        )
    if col in ("amount_minor", "latency_ms"):
        return f"TRY_CAST(r.{q} AS BIGINT) AS {q}"
    if col == "is_retry":
        return f"{_is_retry('r.is_retry')} AS is_retry"
    return f"r.{q} AS {q}"


def checked_rows(
    source: str,
    columns: list[str],
    present: set[str],
    extras: list[str],
    native: Mapping[str, str] | None = None,
) -> str:
    """SELECT every row of `source` typed, with its error code (NULL when the row is good).

    `source` has non-NULL VARCHAR columns, except those in `native` (column -> DuckDB type,
    see NATIVE_TYPES), which it hands over in their own type. `columns` are the contract's
    columns in table order, `present` those the file has (missing optional ones get
    OPTIONAL_DEFAULTS) and `extras` the file's other columns. Rows from `native` columns
    keep no raw text: the messages of bad rows come from the text path
    (`load_transactions`).
    """
    native = native or {}
    typed = [_typed(c, present, native) for c in columns] + [f"r.{ident(c)}" for c in extras]
    raws = [
        f"{'r.' + ident(c) if c in present and c not in native else 'NULL::VARCHAR'} AS {_raw(c)}"
        for c in _CAST_COLUMNS
    ]
    checks = " ".join(
        f"WHEN {NATIVE_CONDITIONS.get(code, cond) if col in native else cond} THEN {code}"
        for code, col, cond, _ in ROW_RULES
    )
    keep = [ident(c) for c in columns + extras]
    # Raw text is kept for bad rows only: a mostly-NULL column costs next to nothing.
    kept_raws = [
        f"CASE WHEN {_ERR} IS NOT NULL THEN {_raw(c)} END AS {_raw(c)}" for c in _CAST_COLUMNS
    ]
    return f"""SELECT {", ".join(keep)}, {_ERR}, {", ".join(kept_raws)}, NULL::BIGINT AS {_DUP_OF}
FROM (
    SELECT *, (CASE {checks} END)::UTINYINT AS {_ERR}
    FROM (SELECT {", ".join(typed + raws)} FROM {source} AS r)
)"""


def load_transactions(source: str, columns: list[str], present: set[str], extras: list[str]) -> str:
    """CREATE TABLE LOADED_TABLE from `source` (see `checked_rows`)."""
    return f"CREATE TABLE {LOADED_TABLE} AS {checked_rows(source, columns, present, extras)}"


def literal(value: object) -> str:
    """A SQL literal for a value DDL cannot take as a parameter (a view's file path).

    Strings are quoted with quotes doubled, so no value can end the literal early.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(str(k))}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def inline_parameters(query: str, params: Mapping[str, object]) -> str:
    """`query` with each `$name` replaced by the literal of `params[name]`."""
    return re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: literal(params[m.group(1)]), query)


STREAMED_VIEW = "__payops_scan"
DROP_STREAMED_VIEW = f"DROP VIEW {STREAMED_VIEW}"


def streamed_view(checked: str) -> str:
    """A view of checked rows (`checked_rows` over a file) that re-reads it on every query."""
    return f"CREATE OR REPLACE VIEW {STREAMED_VIEW} AS {checked}"


# The error code of a checked row (NULL when good), for passes over STREAMED_VIEW.
ERROR_COLUMN = _ERR
# Id hashes seen more than once among the rows of STREAMED_VIEW: 0 proves the ids unique.
# (Equal hashes are not yet equal ids: the copying path decides that exactly.)
REPEATED_ID_HASHES = (
    f"SELECT count(*) - count(DISTINCT hash(txn_id)) FROM (SELECT txn_id FROM {STREAMED_VIEW})"
)


def streamed_transactions_view(name: str, columns: list[str]) -> str:
    """The public view of a large file whose every row passed: `line` is not known."""
    cols = ", ".join(ident(c) for c in columns)
    return f"CREATE VIEW {ident(name)} AS SELECT {cols}, NULL::BIGINT AS line FROM {STREAMED_VIEW}"


def varchar_columns(columns: list[str], native: Mapping[str, str] | None = None) -> str:
    """`columns` as non-NULL text ('' for NULL): how typed sources join the text path.

    Columns in `native` are passed as they are (see `checked_rows`).
    """
    return ", ".join(
        ident(c)
        if c in (native or {})
        else f"coalesce(CAST({ident(c)} AS VARCHAR), '') AS {ident(c)}"
        for c in columns
    )


# Rows, bad rows and distinct id hashes: distinct hashes == rows proves the ids unique.
LOAD_STATS = f"SELECT count(*), count({_ERR}), count(DISTINCT hash(txn_id)) FROM {LOADED_TABLE}"
BAD_ROWS = f"SELECT count({_ERR}) FROM {LOADED_TABLE}"
FIRST_BAD_ROWID = f"SELECT min(rowid) FROM {LOADED_TABLE} WHERE {_ERR} IS NOT NULL"
# Marks every later occurrence of a txn_id (the first stays good). Bind $before: rows from
# there on are left alone (strict mode only needs those ahead of the first bad row).
MARK_DUPLICATES = f"""UPDATE {LOADED_TABLE} AS t
SET {_ERR} = {ERR_DUPLICATE}, {_DUP_OF} = d.first_row
FROM (
    SELECT txn_id, min(rowid) AS first_row FROM {LOADED_TABLE}
    WHERE txn_id <> '' AND rowid < $before GROUP BY txn_id HAVING count(*) > 1
) AS d
WHERE t.txn_id = d.txn_id AND t.rowid > d.first_row AND t.{_ERR} IS NULL AND t.rowid < $before"""


def first_error(line_offset: int) -> str:
    """(line, column, reason) of the first bad row in file order."""
    return f"""SELECT rowid + {int(line_offset)}, {_error_column()}, {_error_reason(line_offset)}
FROM {LOADED_TABLE} WHERE {_ERR} IS NOT NULL ORDER BY rowid LIMIT 1"""


def transactions_view(name: str, columns: list[str], line_offset: int, *, good_only: bool) -> str:
    """The public view: the loaded columns plus `line`, without the bad rows."""
    where = f" WHERE {_ERR} IS NULL" if good_only else ""
    cols = ", ".join(ident(c) for c in columns)
    return (
        f"CREATE VIEW {ident(name)} AS SELECT {cols}, rowid + {int(line_offset)} AS line"
        f" FROM {LOADED_TABLE}{where}"
    )


def _original(col: str) -> str:
    # A bad row kept the text of its cast columns; a duplicate (good otherwise) did not,
    # and shows its parsed value in the contract's spelling.
    q = ident(col)
    if col == "ts":
        return f"coalesce({_raw(col)}, replace(CAST(ts AS VARCHAR), ' ', 'T') || 'Z') AS ts"
    if col in _CAST_COLUMNS:
        return f"coalesce({_raw(col)}, CAST({q} AS VARCHAR)) AS {q}"
    return q


def quarantine_copy(file_columns: list[str], line_offset: int) -> str:
    """COPY the bad rows as the file had them, plus `line` and `reason`, to $path."""
    cols = ", ".join(_original(c) for c in file_columns)
    return f"""COPY (
    SELECT {cols}, rowid + {int(line_offset)} AS line,
           'column ' || {_error_column()} || ': ' || {_error_reason(line_offset)} AS reason
    FROM {LOADED_TABLE} WHERE {_ERR} IS NOT NULL ORDER BY rowid
) TO $path (FORMAT csv, HEADER)"""
