"""Pending approvals, and the one atomic answer each gets.

A paused cycle has one approval request, keyed by its thread id. Answering it is a
compare-and-set from `pending` to `approved` or `rejected`: of two answers racing (an
approve against a reject, from two shells or two machines) exactly one wins, and the
other is told who answered first. The graph is resumed only with the answer that won, so
an action can never be both executed and refused.

`ApprovalStore` is the storage interface; `SqliteApprovalStore` keeps it in SQLite (WAL,
synchronous=FULL: an answer, once acknowledged, survives a power cut).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from tools import sql
from tools.contract import iso

APPROVALS_FILE = "approvals.db"

ApprovalStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True)
class ApprovalRecord:
    """One approval request and, once answered, its answer."""

    thread_id: str
    scenario_id: str
    request: dict[str, Any]
    status: ApprovalStatus
    answered_by: str | None
    reason: str | None
    requested_at: datetime
    answered_at: datetime | None

    @property
    def answered(self) -> bool:
        """True once approved or rejected."""
        return self.status != "pending"


@dataclass(frozen=True)
class AnswerResult:
    """What `answer` did. `won`: this call answered; otherwise `record` holds the answer
    given before (same or opposite)."""

    won: bool
    record: ApprovalRecord


class ApprovalStore(sql.StoreHandle, Protocol):
    """Durable approval requests with an atomic answer (see the module docstring)."""

    def request(self, thread_id: str, scenario_id: str, request: Mapping[str, Any]) -> bool:
        """Record a pending request; False if the thread already has one (kept as it is)."""
        ...

    def answer(
        self,
        thread_id: str,
        *,
        approved: bool,
        by: str,
        reason: str,
        scenario_id: str,
        request: Mapping[str, Any],
    ) -> AnswerResult:
        """Answer the thread's request, atomically; records `request` first if it is missing."""
        ...

    def get(self, thread_id: str) -> ApprovalRecord | None:
        """The thread's request and answer, or None."""
        ...

    def pending(self) -> list[ApprovalRecord]:
        """Unanswered requests, oldest first."""
        ...


class SqliteApprovalStore(sql.SqliteStore):
    """The SQLite `ApprovalStore`; safe between threads and processes."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        super().__init__(path, durable=True, schema=sql.APPROVALS_SCHEMA)

    def request(self, thread_id: str, scenario_id: str, request: Mapping[str, Any]) -> bool:
        """Record a pending request; False if the thread already has one."""
        bind = {
            "thread_id": thread_id,
            "scenario_id": scenario_id,
            "request": json.dumps(request, sort_keys=True),
            "now": iso(self._clock()),
        }
        with self._write() as conn:
            return conn.execute(sql.APPROVALS_REQUEST, bind).rowcount == 1

    def answer(
        self,
        thread_id: str,
        *,
        approved: bool,
        by: str,
        reason: str,
        scenario_id: str,
        request: Mapping[str, Any],
    ) -> AnswerResult:
        """Compare-and-set pending -> approved/rejected in one transaction."""
        now = iso(self._clock())
        with self._write() as conn:
            conn.execute(
                sql.APPROVALS_REQUEST,
                {
                    "thread_id": thread_id,
                    "scenario_id": scenario_id,
                    "request": json.dumps(request, sort_keys=True),
                    "now": now,
                },
            )
            won = (
                conn.execute(
                    sql.APPROVALS_ANSWER,
                    {
                        "thread_id": thread_id,
                        "status": "approved" if approved else "rejected",
                        "by": by,
                        "reason": reason,
                        "now": now,
                    },
                ).rowcount
                == 1
            )
            row = conn.execute(sql.APPROVALS_GET, {"thread_id": thread_id}).fetchone()
        return AnswerResult(won=won, record=_record(row))

    def get(self, thread_id: str) -> ApprovalRecord | None:
        """The thread's request and answer, or None."""
        with self._lock:
            row = self._conn.execute(sql.APPROVALS_GET, {"thread_id": thread_id}).fetchone()
        return None if row is None else _record(row)

    def pending(self) -> list[ApprovalRecord]:
        """Unanswered requests, oldest first."""
        with self._lock:
            rows = self._conn.execute(sql.APPROVALS_PENDING).fetchall()
        return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> ApprovalRecord:
    thread_id, scenario_id, request, status, by, reason, requested_at, answered_at = row
    return ApprovalRecord(
        thread_id=thread_id,
        scenario_id=scenario_id,
        request=json.loads(request),
        status=status,
        answered_by=by,
        reason=reason,
        requested_at=datetime.fromisoformat(requested_at),
        answered_at=datetime.fromisoformat(answered_at) if answered_at else None,
    )
