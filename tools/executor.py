"""The seam between a guarded decision and the routing system that carries it out.

`Executor` is what a real routing/orchestration API implements; `SimulatedExecutor` acts
through the simulator. Every call carries an idempotency key derived from the content of
the decision (`idempotency_key`), and the executor must honour it:

- `execute(decision, key, ...)` applies the decision at most once per key. A key it has
  already applied returns that application's outcome and changes nothing.
- `applied(key)` answers, from the executor's own durable records, whether the key was
  applied: its outcome, or None if it never was. The ledger asks this when a claim is in
  doubt (its owner died between claiming and recording), instead of executing again.

The ledger (tools/ledger.py) sends each key to `execute` once; the executor's own
de-duplication is the second line, for an owner that outlived its lease.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from tools import actions, sql
from tools.contract import Decision, Outcome, ScenarioContext, iso
from tools.routes import SegmentSnapshot
from tools.simulator import simulate

JOURNAL_FILE = "simulator.db"


class Executor(Protocol):
    """Carries out an approved decision, once per idempotency key, and reports its effect."""

    def execute(
        self,
        decision: Decision,
        idempotency_key: str,
        snap: SegmentSnapshot,
        context: ScenarioContext,
    ) -> Outcome:
        """Apply `decision` unless `idempotency_key` was applied already; return its Outcome.

        A repeated key must not apply anything again: return the first application's
        outcome.
        """
        ...

    def applied(self, idempotency_key: str) -> Outcome | None:
        """The outcome of `idempotency_key` if it was ever applied, else None."""
        ...


class SimulatorJournal(sql.SqliteStore):
    """The simulator's durable record of what it applied, once per key (SQLite, WAL, FULL).

    It also counts how often each key was requested: more than once means a caller sent a
    key twice (the ledger should never let it), and the journal absorbed the repeat.
    """

    def __init__(self, path: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        super().__init__(path, durable=True, schema=sql.JOURNAL_SCHEMA)

    def apply(self, key: str, decision: Decision, compute: Callable[[], Outcome]) -> Outcome:
        """Apply `key` once: the first call stores `compute()`, later ones return it."""
        with self._write() as conn:
            row = conn.execute(sql.JOURNAL_GET, {"key": key}).fetchone()
            if row is not None:
                conn.execute(sql.JOURNAL_REPEAT, {"key": key})
                return Outcome.model_validate_json(row[0])
            outcome = compute()
            conn.execute(
                sql.JOURNAL_APPLY,
                {
                    "key": key,
                    "action": decision.action,
                    "params": json.dumps(decision.params, sort_keys=True),
                    "outcome": outcome.model_dump_json(),
                    "now": iso(self._clock()),
                },
            )
            return outcome

    def get(self, key: str) -> Outcome | None:
        """The applied outcome of `key`, or None."""
        with self._lock:
            row = self._conn.execute(sql.JOURNAL_GET, {"key": key}).fetchone()
        return None if row is None else Outcome.model_validate_json(row[0])

    def requests(self, key: str) -> int:
        """How many times `key` was sent to `execute` (0 if never)."""
        with self._lock:
            row = self._conn.execute(sql.JOURNAL_GET, {"key": key}).fetchone()
        return 0 if row is None else int(row[1])


class SimulatedExecutor:
    """An executor that changes no routing: the Outcome is the simulator's estimate.

    With a `journal` (the state directory's, as `agent.context.Context` builds it) it
    remembers what it applied across processes; without one it remembers within this
    object only.
    """

    def __init__(self, journal: Path | None = None) -> None:
        self.journal_path = journal
        self._applied: dict[str, Outcome] = {}

    def execute(
        self,
        decision: Decision,
        idempotency_key: str,
        snap: SegmentSnapshot,
        context: ScenarioContext,
    ) -> Outcome:
        """Simulate `decision` on `snap` (the snapshot of its target segment), once per key."""
        if not idempotency_key:
            raise ValueError("an execution needs an idempotency key")

        def compute() -> Outcome:
            return simulate(decision, snap, context)

        if self.journal_path is None:
            return self._applied.setdefault(idempotency_key, compute())
        with SimulatorJournal(self.journal_path) as journal:
            return journal.apply(idempotency_key, decision, compute)

    def applied(self, idempotency_key: str) -> Outcome | None:
        """What the journal holds for `idempotency_key` (None: never applied)."""
        if self.journal_path is None:
            return self._applied.get(idempotency_key)
        if not self.journal_path.exists():
            return None
        with SimulatorJournal(self.journal_path) as journal:
            return journal.get(idempotency_key)


def idempotency_key(decision: Decision, anomaly_fingerprint: str) -> str:
    """sha256 of the canonical JSON of (anomaly fingerprint, action, params).

    Content-derived and stable across processes; independent of confidence, risk,
    rationale and which reasoner proposed the decision.
    """
    payload = {
        "anomaly": anomaly_fingerprint,
        "action": decision.action,
        # Two spellings of one action give one key (the retry codes are a set, say).
        "params": actions.get(decision.action).key_params(decision.params),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
