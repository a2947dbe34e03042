"""The action ledger: each action is executed at most once per idempotency key.

The act node follows one protocol (`ActionLedger.run_once` implements it):

1. `get(key)`: an `executed` entry means the action already ran (a repeated or resumed
   run): return its stored outcome, execute nothing.
2. `claim(key, ...)`: one INSERT in one transaction; exactly one caller wins a key, even
   across processes. The winner executes, then `record_outcome(key, outcome)`.
3. A claim that loses to an entry still `claimed` is *in doubt*: its owner either crashed
   between claim and record, or is executing right now. It must not be executed again
   blindly. The caller reconciles: the simulator is side-effect free, so re-running the
   simulation and recording it is safe; a real executor would ask the downstream system
   whether the change landed. `record_outcome` is idempotent (the first outcome wins), so
   a reconciler racing the original owner cannot overwrite it.

Keys come from `tools.executor.idempotency_key` (the content of the decision), so a resumed
run recomputes the key it claimed.

Storage is SQLite in WAL mode with synchronous=FULL (a committed claim survives a power
cut); each method is one short transaction, and a killed process leaves each write whole or
absent. The class is the storage interface a PostgreSQL backend would implement again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from pydantic_core import to_jsonable_python

from tools import sql
from tools.config import state_dir
from tools.contract import iso

LEDGER_FILE = "ledger.db"

LedgerStatus = Literal["claimed", "executed"]
JsonObject = dict[str, Any]


class LedgerError(Exception):
    """A ledger call that breaks the protocol (e.g. an outcome for a key never claimed)."""


class InDoubtError(LedgerError):
    """A key is claimed but has no outcome, and the caller gave no way to reconcile it."""

    def __init__(self, entry: LedgerEntry) -> None:
        self.entry = entry
        super().__init__(
            f"action {entry.action} under key {entry.idempotency_key} was claimed at "
            f"{iso(entry.claimed_at)} and has no recorded outcome; reconcile before retrying"
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger."""

    idempotency_key: str
    thread_id: str
    scenario_id: str
    action: str
    params: JsonObject
    status: LedgerStatus
    outcome: JsonObject | None
    claimed_at: datetime
    executed_at: datetime | None

    @property
    def in_doubt(self) -> bool:
        """Claimed but without an outcome: crashed or still running; never re-run blindly."""
        return self.status == "claimed"


@dataclass(frozen=True)
class RunOnceResult:
    """What `ActionLedger.run_once` did: the outcome and how it was obtained."""

    outcome: JsonObject | None
    executed_now: bool  # this call won the claim and executed the action
    reconciled: bool  # the key was in doubt and `reconcile` supplied the outcome


def default_ledger_path() -> Path:
    """The ledger file in the state directory."""
    return state_dir() / LEDGER_FILE


class ActionLedger(sql.SqliteStore):
    """Exactly-once bookkeeping of actions, keyed by idempotency key.

    Safe to share between threads (one lock) and between processes (SQLite locking; a
    writer waits up to `sql.SQLITE_BUSY_TIMEOUT_S` for the write lock).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = path if path is not None else default_ledger_path()
        self._clock = clock or _utcnow
        super().__init__(self.path, durable=True, schema=sql.LEDGER_SCHEMA)

    def claim(
        self,
        key: str,
        *,
        thread_id: str,
        scenario_id: str,
        action: str,
        params: Mapping[str, Any],
    ) -> bool:
        """Claim `key` before executing; True for exactly one caller, False if it exists.

        False whatever the existing entry's status: use `get` to tell an executed action
        (return its outcome) from an in-doubt one (reconcile).
        """
        bind = {
            "key": key,
            "thread_id": thread_id,
            "scenario_id": scenario_id,
            "action": action,
            "params": _dumps(params),
            "now": iso(self._clock()),
        }
        with self._lock, sql.sqlite_write(self._conn) as conn:
            return conn.execute(sql.LEDGER_CLAIM, bind).rowcount == 1

    def record_outcome(self, key: str, outcome: Mapping[str, Any] | None) -> bool:
        """Mark a claimed action executed with its outcome; True if this call recorded it.

        Idempotent: once an outcome is recorded, later calls change nothing and return
        False (the first outcome wins). Raises LedgerError for a key that was never claimed.
        """
        bind = {"key": key, "outcome": _dumps(outcome), "now": iso(self._clock())}
        with self._lock, sql.sqlite_write(self._conn) as conn:
            if conn.execute(sql.LEDGER_RECORD_OUTCOME, bind).rowcount == 1:
                return True
            if conn.execute(sql.LEDGER_GET, {"key": key}).fetchone() is None:
                raise LedgerError(f"no claim for idempotency key {key}: claim before recording")
            return False

    def get(self, key: str) -> LedgerEntry | None:
        """The entry under `key`, or None if it was never claimed."""
        with self._lock:
            row = self._conn.execute(sql.LEDGER_GET, {"key": key}).fetchone()
        return None if row is None else _entry(row)

    def recent(self, limit: int = 20) -> list[LedgerEntry]:
        """The last `limit` entries, newest claim first (what payops executed lately)."""
        with self._lock:
            rows = self._conn.execute(sql.LEDGER_RECENT, {"limit": limit}).fetchall()
        return [_entry(row) for row in rows]

    def in_doubt(self, older_than: datetime | None = None) -> list[LedgerEntry]:
        """Claimed entries without an outcome, oldest first (claimed at or before `older_than`).

        For a reconciler: an entry claimed long ago is a crash, a fresh one may be running.
        """
        before = iso(older_than if older_than is not None else self._clock())
        with self._lock:
            rows = self._conn.execute(sql.LEDGER_IN_DOUBT, {"before": before}).fetchall()
        return [_entry(row) for row in rows]

    def run_once(
        self,
        key: str,
        *,
        thread_id: str,
        scenario_id: str,
        action: str,
        params: Mapping[str, Any],
        execute: Callable[[], Mapping[str, Any] | None],
        reconcile: Callable[[LedgerEntry], Mapping[str, Any] | None] | None = None,
    ) -> RunOnceResult:
        """Execute an action at most once per key and return its outcome.

        An executed key returns the stored outcome. A won claim runs `execute` and records
        its result; if `execute` raises, the claim stays in doubt (the action may have
        partly happened). An in-doubt key is handed to `reconcile`, whose answer is
        recorded; without `reconcile` it raises InDoubtError.
        """
        entry = self.get(key)
        if entry is None:
            won = self.claim(
                key, thread_id=thread_id, scenario_id=scenario_id, action=action, params=params
            )
            if won:
                outcome = execute()
                self.record_outcome(key, outcome)
                return RunOnceResult(_plain(outcome), executed_now=True, reconciled=False)
            entry = self._must_get(key)  # the claim lost to an existing row
        if entry.status == "executed":
            return RunOnceResult(entry.outcome, executed_now=False, reconciled=False)
        if reconcile is None:
            raise InDoubtError(entry)
        self.record_outcome(key, reconcile(entry))
        # Read back: if the original owner recorded first, its outcome is the one that stands.
        return RunOnceResult(self._must_get(key).outcome, executed_now=False, reconciled=True)

    def _must_get(self, key: str) -> LedgerEntry:
        entry = self.get(key)
        if entry is None:  # rows are never deleted, so only someone editing the file by hand
            raise LedgerError(f"entry {key} vanished from {self.path}")
        return entry


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _dumps(value: object) -> str:
    # Canonical JSON (sorted keys, no spaces) so equal params give equal text and keys;
    # pydantic's encoder covers datetimes and models left in params.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=to_jsonable_python)


def _plain(outcome: Mapping[str, Any] | None) -> JsonObject | None:
    # The same JSON view of the outcome `get` would return later.
    return None if outcome is None else cast(JsonObject, json.loads(_dumps(outcome)))


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> LedgerEntry:
    key, thread_id, scenario_id, action, params, status, outcome, claimed_at, executed_at = row
    return LedgerEntry(
        idempotency_key=key,
        thread_id=thread_id,
        scenario_id=scenario_id,
        action=action,
        params=json.loads(params),
        status=status,
        outcome=None if outcome is None else json.loads(outcome),
        claimed_at=datetime.fromisoformat(claimed_at),
        executed_at=None if executed_at is None else datetime.fromisoformat(executed_at),
    )
