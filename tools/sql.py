"""Named, parameterised DuckDB queries: every SQL statement payops runs lives here.

User values never go into SQL text: they are bound as parameters. Identifiers that come
from data (dimension and column names) are quoted with `ident`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


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


# ---------------------------------------------------------------------------------------
# SQLite state stores: the action ledger (tools/ledger.py) and the learning store
# (tools/learning.py). The DML is plain SQL that PostgreSQL also runs (ON CONFLICT ... DO
# NOTHING, no SQLite-only functions); only the placeholder spelling differs (`:name` here,
# `%(name)s` in psycopg). The DDL, PRAGMAs and BEGIN IMMEDIATE are SQLite's own.

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


def sqlite_connect(path: Path, *, durable: bool) -> sqlite3.Connection:
    """Open a state database in WAL mode with a busy timeout, in autocommit mode.

    `durable` syncs every commit (the action ledger); otherwise commits survive a killed
    process but not a power cut (the learning store). Transactions are explicit: use
    `sqlite_write` for every write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit BEGIN, so sqlite_write owns transaction bounds.
    # check_same_thread=False: the stores serialise access with their own lock.
    conn = sqlite3.connect(
        path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(SQLITE_WAL)
        conn.execute(SQLITE_SYNC_FULL if durable else SQLITE_SYNC_NORMAL)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def sqlite_write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed whole when the block ends, rolled back on error."""
    conn.execute(SQLITE_BEGIN_WRITE)
    try:
        yield conn
    except BaseException:
        conn.execute(SQLITE_ROLLBACK)
        raise
    conn.execute(SQLITE_COMMIT)


LEDGER_SCHEMA: tuple[str, ...] = (
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
)
LEDGER_COLUMNS = (
    "idempotency_key, thread_id, scenario_id, action, params, status, outcome, "
    "claimed_at, executed_at"
)
LEDGER_CLAIM = """INSERT INTO action_ledger
    (idempotency_key, thread_id, scenario_id, action, params, status, claimed_at)
VALUES (:key, :thread_id, :scenario_id, :action, :params, 'claimed', :now)
ON CONFLICT (idempotency_key) DO NOTHING"""
LEDGER_RECORD_OUTCOME = """UPDATE action_ledger
SET status = 'executed', outcome = :outcome, executed_at = :now
WHERE idempotency_key = :key AND status = 'claimed'"""
LEDGER_GET = f"SELECT {LEDGER_COLUMNS} FROM action_ledger WHERE idempotency_key = :key"
LEDGER_IN_DOUBT = f"""SELECT {LEDGER_COLUMNS} FROM action_ledger
WHERE status = 'claimed' AND claimed_at <= :before
ORDER BY claimed_at, idempotency_key"""

LEARNING_SCHEMA: tuple[str, ...] = (
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
    "SELECT "
    + ", ".join(ident(c) for c in LEARNING_COLUMNS)
    + " FROM outcomes ORDER BY id"
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
