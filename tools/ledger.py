"""The action ledger: each action reaches the executor once per idempotency key.

`execute_once` is the protocol every execution follows; `LedgerStore` is the storage it
needs (`ActionLedger` keeps it in SQLite; a PostgreSQL backend implements the same
methods). For one key:

1. `get(key)`: an `executed` entry means the action already ran (a repeated or resumed
   run): return its stored outcome, execute nothing.
2. `claim(key, ...)`: one transaction that checks the admission (guard against what the
   ledger holds, see `Admission`) and inserts the claim with its owner (this process) and
   a lease. Exactly one caller wins a key, even across processes; the winner calls the
   executor with the key, then `record_outcome(key, outcome)`.
3. A key that is claimed but has no outcome is *in doubt*. While its owner is alive and
   its lease runs, it is left alone: the caller waits for the outcome. Once the owner is
   dead (same host: its process is gone) or its lease ran out, one caller takes the claim
   over (compare-and-set) and asks the executor whether the key was applied: if it was,
   the executor's outcome is recorded; if it never was, the admission is checked again and
   the action is executed (or, refused now, the claim is withdrawn). Nothing is executed
   again blindly.

Keys come from `tools.executor.idempotency_key` (the content of the decision), so a resumed
run recomputes the key it claimed. The executor must apply a key at most once itself
(see `tools.executor.Executor`), which covers the one case the ledger cannot: an owner
that outlives its lease on another host.

Storage is SQLite in WAL mode with synchronous=FULL (a committed claim survives a power
cut); each method is one short transaction, and a killed process leaves each write whole or
absent.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from pydantic_core import to_jsonable_python

from tools import sql
from tools.config import state_dir
from tools.contract import Violation, iso
from tools.crashpoints import crash_point

LEDGER_FILE = "ledger.db"

# How long a claim's owner is presumed to be working on it. An executor call must finish
# well within it; after it, another process may reconcile the claim.
DEFAULT_LEASE = timedelta(minutes=5)
# How long a caller waits for a live owner's outcome before giving up (InProgressError).
DEFAULT_WAIT = timedelta(seconds=60)

LedgerStatus = Literal["claimed", "executed"]
JsonObject = dict[str, Any]


class LedgerError(Exception):
    """A ledger call that breaks the protocol (e.g. an outcome for a key never claimed)."""


class InProgressError(LedgerError):
    """Another live process holds the claim and did not finish within the wait."""

    def __init__(self, entry: LedgerEntry) -> None:
        self.entry = entry
        lease = iso(entry.lease_until) if entry.lease_until else "now"
        super().__init__(
            f"{entry.action} under key {entry.idempotency_key[:16]}… is being executed by "
            f"{entry.owner} (claimed at {iso(entry.claimed_at)}, lease until {lease}); "
            "try again later"
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
    owner: str = ""
    lease_until: datetime | None = None  # None: no lease (expired, or from before leases)

    @property
    def in_doubt(self) -> bool:
        """Claimed but without an outcome: crashed or still running; never re-run blindly."""
        return self.status == "claimed"

    @property
    def taken_at(self) -> datetime:
        """When the action took effect: executed, else claimed (in doubt counts as taken)."""
        return self.executed_at or self.claimed_at

    def lease_live(self, now: datetime) -> bool:
        """True while the owner's lease runs."""
        return self.lease_until is not None and now < self.lease_until


@dataclass(frozen=True)
class Admission:
    """The check a claim must pass, inside the claim's own transaction.

    `check` gets every ledger entry claimed since `since` and returns the violations that
    forbid the action now ([] admits it). Because it runs under the write lock, two
    processes cannot both pass it on the same history (e.g. both shift one segment).
    """

    since: datetime
    check: Callable[[Sequence[LedgerEntry]], list[Violation]]


@dataclass(frozen=True)
class Claim:
    """What `claim` did: won the key, lost it to an existing entry, or was refused."""

    won: bool
    refused: list[Violation] = field(default_factory=list)


@dataclass(frozen=True)
class RunOnceResult:
    """What `execute_once` did: the outcome and how it was obtained."""

    outcome: JsonObject | None
    executed_now: bool  # this call sent the action to the executor
    reconciled: bool  # the key was in doubt and this call settled it
    refused: list[Violation] = field(default_factory=list)  # the admission said no


class LedgerStore(sql.StoreHandle, Protocol):
    """Storage of the exactly-once protocol (see the module docstring)."""

    owner: str
    lease: timedelta

    def now(self) -> datetime:
        """The ledger's clock (wall-clock UTC; injectable in tests)."""
        ...

    def get(self, key: str) -> LedgerEntry | None:
        """The entry under `key`, or None if it was never claimed."""
        ...

    def claim(
        self,
        key: str,
        *,
        thread_id: str,
        scenario_id: str,
        action: str,
        params: Mapping[str, Any],
        admission: Admission | None = None,
    ) -> Claim:
        """Claim `key` for this owner, atomically with `admission`."""
        ...

    def record_outcome(self, key: str, outcome: Mapping[str, Any] | None) -> bool:
        """Mark a claimed action executed; the first outcome wins."""
        ...

    def history(self, since: datetime) -> list[LedgerEntry]:
        """Entries claimed at or after `since`, claimed or executed, oldest first."""
        ...

    def recent(self, limit: int = 20) -> list[LedgerEntry]:
        """The last `limit` entries, newest claim first (what payops executed lately)."""
        ...

    def take_over(self, entry: LedgerEntry) -> bool:
        """Make this owner the claim's owner, if nobody changed it since `entry` was read."""
        ...

    def release(self, key: str) -> None:
        """End this owner's lease on `key` now, so a reconciler need not wait for it."""
        ...

    def withdraw(self, key: str) -> bool:
        """Delete this owner's claim of an action the executor confirmed never happened."""
        ...


def default_ledger_path() -> Path:
    """The ledger file in the state directory."""
    return state_dir() / LEDGER_FILE


_OWNER: tuple[int, str] | None = None


def process_owner() -> str:
    """This process as a claim owner: `host:pid:nonce` (the nonce tells a reused pid apart)."""
    global _OWNER
    pid = os.getpid()
    if _OWNER is None or _OWNER[0] != pid:  # a forked child is a new owner
        _OWNER = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
    return _OWNER[1]


def owner_alive(owner: str) -> bool | None:
    """Is the owning process alive? None when it cannot be told (another host, or malformed).

    Only a definite False lets a claim be reconciled before its lease ends.
    """
    host, pid_text, _nonce = [*owner.rsplit(":", 2), "", ""][:3]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return process_owner() == owner  # our pid, another nonce: a dead earlier process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    # A killed child nobody has reaped yet still answers kill(pid, 0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


class ActionLedger(sql.SqliteStore):
    """The SQLite `LedgerStore`, keyed by idempotency key.

    Safe to share between threads (one lock) and between processes (SQLite locking; a
    writer waits up to `sql.SQLITE_BUSY_TIMEOUT_S` for the write lock).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        owner: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.path = path if path is not None else default_ledger_path()
        self._clock = clock or _utcnow
        self.owner = owner or process_owner()
        self.lease = lease
        super().__init__(self.path, durable=True, schema=sql.LEDGER_SCHEMA)

    def now(self) -> datetime:
        """The ledger's clock."""
        return self._clock()

    def claim(
        self,
        key: str,
        *,
        thread_id: str,
        scenario_id: str,
        action: str,
        params: Mapping[str, Any],
        admission: Admission | None = None,
    ) -> Claim:
        """Claim `key` before executing; won by exactly one caller.

        Lost (won False, nothing refused) whatever the existing entry's status: use `get` to
        tell an executed action from an in-doubt one. With `admission`, its check runs in
        the same transaction and a refusal claims nothing.
        """
        now = self._clock()
        bind = {
            "key": key,
            "thread_id": thread_id,
            "scenario_id": scenario_id,
            "action": action,
            "params": _dumps(params),
            "now": iso(now),
            "owner": self.owner,
            "lease_until": iso(now + self.lease),
        }
        with self._write() as conn:
            if conn.execute(sql.LEDGER_GET, {"key": key}).fetchone() is not None:
                return Claim(won=False)
            if admission is not None:
                rows = conn.execute(sql.LEDGER_HISTORY, {"since": iso(admission.since)})
                refused = admission.check([_entry(row) for row in rows])
                if refused:
                    return Claim(won=False, refused=refused)
            return Claim(won=conn.execute(sql.LEDGER_CLAIM, bind).rowcount == 1)

    def record_outcome(self, key: str, outcome: Mapping[str, Any] | None) -> bool:
        """Mark a claimed action executed with its outcome; True if this call recorded it.

        Idempotent: once an outcome is recorded, later calls change nothing and return
        False (the first outcome wins). Raises LedgerError for a key that was never claimed.
        """
        bind = {"key": key, "outcome": _dumps(outcome), "now": iso(self._clock())}
        with self._write() as conn:
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

    def history(self, since: datetime) -> list[LedgerEntry]:
        """Entries claimed at or after `since` (claimed or executed), oldest first."""
        with self._lock:
            rows = self._conn.execute(sql.LEDGER_HISTORY, {"since": iso(since)}).fetchall()
        return [_entry(row) for row in rows]

    def in_doubt(self, older_than: datetime | None = None) -> list[LedgerEntry]:
        """Claimed entries without an outcome, oldest first (claimed at or before `older_than`)."""
        before = iso(older_than if older_than is not None else self._clock())
        with self._lock:
            rows = self._conn.execute(sql.LEDGER_IN_DOUBT, {"before": before}).fetchall()
        return [_entry(row) for row in rows]

    def take_over(self, entry: LedgerEntry) -> bool:
        """Compare-and-set the claim to this owner with a fresh lease; False if it moved."""
        bind = {
            "key": entry.idempotency_key,
            "owner": self.owner,
            "lease_until": iso(self._clock() + self.lease),
            "previous_owner": entry.owner,
            "previous_lease": "" if entry.lease_until is None else iso(entry.lease_until),
        }
        with self._write() as conn:
            return conn.execute(sql.LEDGER_TAKE_OVER, bind).rowcount == 1

    def release(self, key: str) -> None:
        """End this owner's lease on `key` now (its executor call failed)."""
        bind = {"key": key, "owner": self.owner, "now": iso(self._clock())}
        with self._write() as conn:
            conn.execute(sql.LEDGER_RELEASE, bind)

    def withdraw(self, key: str) -> bool:
        """Delete this owner's claim on `key`; True if it was deleted."""
        with self._write() as conn:
            return (
                conn.execute(sql.LEDGER_WITHDRAW, {"key": key, "owner": self.owner}).rowcount == 1
            )


def execute_once(
    ledger: LedgerStore,
    key: str,
    *,
    thread_id: str,
    scenario_id: str,
    action: str,
    params: Mapping[str, Any],
    execute: Callable[[], Mapping[str, Any] | None],
    applied: Callable[[], Mapping[str, Any] | None],
    admission: Admission | None = None,
    wait: timedelta = DEFAULT_WAIT,
    poll_s: float = 0.05,
) -> RunOnceResult:
    """Send an action to the executor at most once per key and return its outcome.

    `execute` calls the executor with the key; `applied` asks it whether the key was
    applied (its outcome, or None). An executed key returns the stored outcome. A won claim
    runs `execute` and records its result; if `execute` raises, the lease is released and
    the error propagates (a reconciler will ask `applied`). A claim held by a live owner is
    waited on for up to `wait` (then InProgressError); an abandoned one is taken over and
    reconciled. `admission` is checked with every claim and before executing a
    reconciled claim the executor never applied.
    """
    deadline = time.monotonic() + wait.total_seconds()
    while True:
        entry = ledger.get(key)
        if entry is None:
            claim = ledger.claim(
                key,
                thread_id=thread_id,
                scenario_id=scenario_id,
                action=action,
                params=params,
                admission=admission,
            )
            if claim.refused:
                return RunOnceResult(
                    None, executed_now=False, reconciled=False, refused=claim.refused
                )
            if claim.won:
                return _execute(ledger, key, execute, reconciled=False)
            continue  # lost the race: read the winner's entry
        if entry.status == "executed":
            return RunOnceResult(entry.outcome, executed_now=False, reconciled=False)
        if _held(ledger, entry):
            if time.monotonic() >= deadline:
                raise InProgressError(entry)
            time.sleep(poll_s)
            poll_s = min(poll_s * 1.5, 0.5)
            continue
        if ledger.take_over(entry):
            crash_point("act:taken_over")
            return _reconcile(ledger, entry, execute, applied, admission)
        # Someone else took it over first: wait for them like for any live owner.


def _held(ledger: LedgerStore, entry: LedgerEntry) -> bool:
    # Left alone while its owner may be working on it: alive (or unknown) and leased.
    if owner_alive(entry.owner) is False:
        return False
    return entry.lease_live(ledger.now())


def _execute(
    ledger: LedgerStore,
    key: str,
    execute: Callable[[], Mapping[str, Any] | None],
    *,
    reconciled: bool,
) -> RunOnceResult:
    crash_point("act:claimed")
    try:
        outcome = execute()
    except BaseException:
        ledger.release(key)  # in doubt: the call may have landed; reconcile asks the executor
        raise
    crash_point("act:executed")
    ledger.record_outcome(key, outcome)
    crash_point("act:recorded")
    # Read back: if a reconciler recorded first, its outcome is the one that stands.
    stored = ledger.get(key)
    final = stored.outcome if stored is not None else _plain(outcome)
    return RunOnceResult(final, executed_now=True, reconciled=reconciled)


def _reconcile(
    ledger: LedgerStore,
    entry: LedgerEntry,
    execute: Callable[[], Mapping[str, Any] | None],
    applied: Callable[[], Mapping[str, Any] | None],
    admission: Admission | None,
) -> RunOnceResult:
    key = entry.idempotency_key
    found = applied()
    if found is not None:
        ledger.record_outcome(key, found)
        stored = ledger.get(key)
        outcome = stored.outcome if stored is not None else _plain(found)
        return RunOnceResult(outcome, executed_now=False, reconciled=True)
    # The executor never applied it: the action is still to be done, if policy allows it now.
    if admission is not None:
        refused = admission.check(ledger.history(admission.since))
        if refused:
            ledger.withdraw(key)
            return RunOnceResult(None, executed_now=False, reconciled=True, refused=refused)
    return _execute(ledger, key, execute, reconciled=True)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _dumps(value: object) -> str:
    # Canonical JSON (sorted keys, no spaces) so equal params give equal text and keys;
    # pydantic's encoder covers datetimes and models left in params.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=to_jsonable_python)


def _plain(outcome: Mapping[str, Any] | None) -> JsonObject | None:
    # The same JSON view of the outcome `get` would return later.
    return None if outcome is None else cast(JsonObject, json.loads(_dumps(outcome)))


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> LedgerEntry:
    (
        key,
        thread_id,
        scenario_id,
        action,
        params,
        status,
        outcome,
        claimed_at,
        executed_at,
        owner,
        lease_until,
    ) = row
    return LedgerEntry(
        idempotency_key=key,
        thread_id=thread_id,
        scenario_id=scenario_id,
        action=action,
        params=json.loads(params),
        status=status,
        outcome=None if outcome is None else json.loads(outcome),
        claimed_at=datetime.fromisoformat(claimed_at),
        executed_at=_time(executed_at),
        owner=owner,
        lease_until=_time(lease_until),
    )
