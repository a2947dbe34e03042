"""The learning store: every outcome the loop produced, and what the reasoner learns from them.

`LearningStore` keeps one row per decision outcome in SQLite (WAL mode, one short
transaction per outcome, safe for several processes), prunes rows older than the retention
period, aggregates them in SQL (`stats`), exports them (`export`), and condenses them into
a `LearningContext` the deterministic reasoner reads on its next cycle to rank remedies.
`OutcomeStore` is its storage interface, which a PostgreSQL backend implements again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tools import sql
from tools.config import LearningConfig, state_dir
from tools.contract import (
    ActionName,
    Decision,
    IncidentKind,
    Outcome,
    Segment,
    Verdict,
    iso,
    utc,
)
from tools.output import atomic_writer

LEARNING_FILE = "learning.db"

# Defaults of LearningContext.adjustment (see `remedy_adjustment`).
PRIOR_STRENGTH = 5.0  # k: outcomes needed before past results carry half their weight
MAX_ADJUSTMENT = 0.05  # c: the bonus/penalty never exceeds 5 pp of success rate

# Pruning is one indexed DELETE; running it at most hourly keeps record() a single INSERT.
PRUNE_INTERVAL = timedelta(hours=1)

StatsKey = Literal["action", "incident_kind", "kind_action"]
ExportFormat = Literal["json", "csv"]

_STATS_SQL: dict[str, str] = {
    "action": sql.LEARNING_STATS_BY_ACTION,
    "incident_kind": sql.LEARNING_STATS_BY_KIND,
    "kind_action": sql.LEARNING_STATS_BY_KIND_ACTION,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LearnedOutcome(BaseModel):
    """What the learn node records after a cycle: the decision, its verdict and its effect.

    `improvement`, `before` and `after` are the simulated or measured success rates of the
    target segment (fractions, as in the contract's `outcome`); they are None when nothing
    was executed. `idempotency_key` makes recording idempotent: the action ledger's key of
    an executed action (an execution is learned once, however many runs report it), or
    `cycle:<thread id>` for a cycle that executed nothing (a cycle is learned once, however
    often a crashed one is finished).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario_id: str
    thread_id: str = ""
    incident_kind: IncidentKind
    action: ActionName
    segment: Segment = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    verdict: Verdict
    before: float | None = Field(default=None, allow_inf_nan=False)
    after: float | None = Field(default=None, allow_inf_nan=False)
    improvement: float | None = Field(default=None, allow_inf_nan=False)
    confidence: float = Field(ge=0.0, le=1.0)
    reasoner: str = "deterministic"
    idempotency_key: str | None = None
    recorded_at: datetime = Field(default_factory=_utcnow)

    @field_validator("recorded_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return utc(value)

    @property
    def success(self) -> bool | None:
        """Did an executed action improve its segment? None when not executed or unmeasured."""
        if self.verdict != "executed" or self.improvement is None:
            return None
        return self.improvement > 0

    @classmethod
    def of(
        cls,
        decision: Decision,
        verdict: Verdict,
        outcome: Outcome | None,
        *,
        scenario_id: str,
        incident_kind: str,
        thread_id: str = "",
        idempotency_key: str | None = None,
    ) -> LearnedOutcome:
        """The outcome to learn from a decision and its verdict; `outcome` (the executed
        action's effect) counts only when the verdict is `executed`."""
        effect = outcome if verdict == "executed" else None
        return cls(
            scenario_id=scenario_id,
            thread_id=thread_id,
            incident_kind=incident_kind,
            action=decision.action,
            segment=decision.target_segment(),
            params=decision.params,
            verdict=verdict,
            before=None if effect is None else effect.before,
            after=None if effect is None else effect.after,
            improvement=None if effect is None else effect.improvement,
            confidence=decision.confidence,
            reasoner=decision.reasoner,
            idempotency_key=idempotency_key,
        )


@dataclass(frozen=True)
class ActionStats:
    """Aggregates over one group of outcomes (an action, an incident kind, or both).

    `count` counts every recorded decision; the rest cover executed actions with a measured
    improvement only (`executed` of them), and are None when there are none.
    """

    incident_kind: str | None
    action: str | None
    count: int
    executed: int
    success_rate: float | None
    mean_improvement: float | None
    best: float | None
    worst: float | None


@dataclass(frozen=True)
class RemedyPrior:
    """What past executions of `action` against `incident_kind` say about it.

    `count` executed outcomes, `successes` of them improved their segment, with
    `mean_improvement` (fraction of success rate). Unseen pairs have count 0.
    """

    incident_kind: str
    action: str
    count: int = 0
    successes: int = 0
    mean_improvement: float = 0.0

    @property
    def success_rate(self) -> float:
        """Laplace-smoothed success rate (successes + 1) / (count + 2): 0.5 when unseen."""
        return (self.successes + 1) / (self.count + 2)


def remedy_adjustment(
    prior: RemedyPrior,
    *,
    prior_strength: float = PRIOR_STRENGTH,
    max_adjustment: float = MAX_ADJUSTMENT,
) -> float:
    """Score bonus (> 0) or penalty (< 0) for a remedy, from its past outcomes.

    With n executed outcomes, s of them successes, mean improvement m, k = prior_strength
    and c = max_adjustment:

        signal     = (clip(m, -c, c) + c * (2 * s / n - 1)) / 2     in [-c, c]
        adjustment = signal * n / (n + k)                            in (-c, c)

    The signal averages how much the remedy helped (clipped, so one outlier cannot carry
    it) and how often it helped (so a remedy that repeatedly did nothing, m = 0, is still
    penalised). The weight n / (n + k) shrinks it toward 0 when there is little evidence:
    unseen gives 0, two outcomes at most 2/7 of c (1.4 pp with the defaults), so a couple of
    outcomes cannot outweigh the simulator's estimate; many outcomes approach c. Add it to
    the simulator's estimated improvement (same unit: fraction of success rate).
    """
    n = prior.count
    if n <= 0:
        return 0.0
    c = max_adjustment
    mean = min(max(prior.mean_improvement, -c), c)
    signal = (mean + c * (2.0 * prior.successes / n - 1.0)) / 2.0
    return signal * n / (n + prior_strength)


@dataclass(frozen=True)
class LearningContext:
    """Per (incident_kind, action) priors the deterministic reasoner ranks remedies with.

    Built by `LearningStore.learning_context`; `incident_kind` is the filter it was built
    with (None: every kind). Pairs with no executed outcome get a neutral prior.
    """

    priors: tuple[RemedyPrior, ...] = ()
    incident_kind: str | None = None
    prior_strength: float = PRIOR_STRENGTH
    max_adjustment: float = MAX_ADJUSTMENT
    _index: dict[tuple[str, str], RemedyPrior] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for p in self.priors:
            self._index[(p.incident_kind, p.action)] = p

    def prior(self, kind: str, action: str) -> RemedyPrior:
        """The prior of `action` against `kind` (count 0 when never executed)."""
        return self._index.get((kind, action)) or RemedyPrior(incident_kind=kind, action=action)

    def adjustment(self, kind: str, action: str) -> float:
        """Bounded score bonus/penalty of `action` against `kind`: see `remedy_adjustment`."""
        return remedy_adjustment(
            self.prior(kind, action),
            prior_strength=self.prior_strength,
            max_adjustment=self.max_adjustment,
        )


class OutcomeStore(sql.StoreHandle, Protocol):
    """Storage of learned outcomes: what the learn node writes and the reasoner reads."""

    def record(self, outcome: LearnedOutcome) -> bool:
        """Store one outcome; False if its idempotency key is already in."""
        ...

    def count(self) -> int:
        """Number of stored outcomes."""
        ...

    def stats(self, by: StatsKey = "action") -> list[ActionStats]:
        """Aggregates per action, incident kind, or both."""
        ...

    def learning_context(
        self,
        incident_kind: str | None = None,
        *,
        prior_strength: float = PRIOR_STRENGTH,
        max_adjustment: float = MAX_ADJUSTMENT,
    ) -> LearningContext:
        """Priors of every (incident_kind, action) executed so far."""
        ...

    def export(self, path: Path, fmt: ExportFormat = "json") -> int:
        """Write every outcome to `path`, whole or not at all; returns the rows written."""
        ...


def default_learning_path() -> Path:
    """The learning store file in the state directory."""
    return state_dir() / LEARNING_FILE


class LearningStore(sql.SqliteStore):
    """The SQLite `OutcomeStore`: outcomes of past decisions, kept for `retention_days`
    (config `learning.retention_days`).

    Safe to share between threads (one lock) and between processes (SQLite locking; a
    writer waits up to `sql.SQLITE_BUSY_TIMEOUT_S` for the write lock). Old rows are pruned
    when the store opens and at most hourly when recording.
    """

    def __init__(
        self,
        path: Path | None = None,
        retention_days: int | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = path if path is not None else default_learning_path()
        self.retention = timedelta(
            days=retention_days if retention_days is not None else LearningConfig().retention_days
        )
        self._clock = clock or _utcnow
        super().__init__(self.path, durable=False, schema=sql.LEARNING_SCHEMA)
        self._last_prune = self._clock()
        self.prune(self._last_prune)

    def record(self, outcome: LearnedOutcome) -> bool:
        """Store one outcome in one transaction; False if its idempotency key is already in."""
        success = outcome.success
        bind = {
            "recorded_at": iso(outcome.recorded_at),
            "scenario_id": outcome.scenario_id,
            "thread_id": outcome.thread_id,
            "incident_kind": outcome.incident_kind,
            "action": outcome.action,
            "segment": _dumps(outcome.segment),
            "params": _dumps(outcome.params),
            "verdict": outcome.verdict,
            "improvement": outcome.improvement,
            "before": outcome.before,
            "after": outcome.after,
            "success": None if success is None else int(success),
            "confidence": outcome.confidence,
            "reasoner": outcome.reasoner,
            "idempotency_key": outcome.idempotency_key,
        }
        now = self._clock()
        with self._write() as conn:
            inserted = conn.execute(sql.LEARNING_INSERT, bind).rowcount == 1
            if now - self._last_prune >= PRUNE_INTERVAL:
                conn.execute(sql.LEARNING_PRUNE, {"cutoff": iso(now - self.retention)})
                self._last_prune = now
        return inserted

    def prune(self, now: datetime | None = None) -> int:
        """Delete outcomes recorded before `now` minus the retention; returns how many."""
        cutoff = iso((now if now is not None else self._clock()) - self.retention)
        with self._write() as conn:
            return conn.execute(sql.LEARNING_PRUNE, {"cutoff": cutoff}).rowcount

    def count(self) -> int:
        """Number of stored outcomes."""
        with self._lock:
            (n,) = self._conn.execute(sql.LEARNING_COUNT).fetchone()
        return int(n)

    def stats(self, by: StatsKey = "action") -> list[ActionStats]:
        """Count, success rate, mean/best/worst improvement per action, kind, or both."""
        with self._lock:
            rows = self._conn.execute(_STATS_SQL[by]).fetchall()
        return [
            ActionStats(
                incident_kind=kind,
                action=action,
                count=int(n),
                executed=int(executed),
                success_rate=_opt_float(rate),
                mean_improvement=_opt_float(mean),
                best=_opt_float(best),
                worst=_opt_float(worst),
            )
            for kind, action, n, executed, rate, mean, best, worst in rows
        ]

    def learning_context(
        self,
        incident_kind: str | None = None,
        *,
        prior_strength: float = PRIOR_STRENGTH,
        max_adjustment: float = MAX_ADJUSTMENT,
    ) -> LearningContext:
        """Priors of every (incident_kind, action) executed so far, optionally for one kind."""
        with self._lock:
            if incident_kind is None:
                rows = self._conn.execute(sql.LEARNING_PRIORS_ALL).fetchall()
            else:
                rows = self._conn.execute(
                    sql.LEARNING_PRIORS_FOR_KIND, {"kind": incident_kind}
                ).fetchall()
        priors = tuple(
            RemedyPrior(
                incident_kind=kind,
                action=action,
                count=int(n),
                successes=int(successes),
                mean_improvement=float(mean),
            )
            for kind, action, n, successes, mean in rows
        )
        return LearningContext(
            priors=priors,
            incident_kind=incident_kind,
            prior_strength=prior_strength,
            max_adjustment=max_adjustment,
        )

    def export(self, path: Path, fmt: ExportFormat = "json") -> int:
        """Write every outcome to `path` (a JSON array or CSV); returns the rows written.

        The file appears whole or not at all (written beside it, then renamed). JSON keeps
        segment and params as objects and success as true/false/null; CSV holds them as
        JSON text and 1/0, with empty cells for nulls.
        """
        with atomic_writer(path, "learn export") as out, self._lock:
            rows = self._conn.execute(sql.LEARNING_EXPORT)
            written = _write_csv(out, rows) if fmt == "csv" else _write_json(out, rows)
        return written


def _dumps(value: object) -> str:
    # Canonical JSON so equal segments/params are equal text (groupable, diffable).
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _write_json(out: IO[str], rows: Iterator[Any]) -> int:
    # One object per line inside the array: valid JSON that still diffs and streams well.
    written = 0
    out.write("[")
    for row in rows:
        record = dict(zip(sql.LEARNING_COLUMNS, row, strict=True))
        record["segment"] = json.loads(record["segment"])
        record["params"] = json.loads(record["params"])
        if record["success"] is not None:
            record["success"] = bool(record["success"])
        out.write(("\n" if written == 0 else ",\n") + json.dumps(record, allow_nan=False))
        written += 1
    out.write("\n]\n" if written else "]\n")
    return written


def _write_csv(out: IO[str], rows: Iterator[Any]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(sql.LEARNING_COLUMNS)
    written = 0
    for row in rows:
        # str(float) is the shortest repr that reads back to the same float.
        writer.writerow("" if v is None else v for v in row)
        written += 1
    return written
