"""Run settings, passed to the graph as its runtime context (never read from globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from tools.approvals import APPROVALS_FILE, ApprovalStore, SqliteApprovalStore
from tools.config import PayopsConfig, find_state_dir
from tools.contract import Segment, TimeWindow, segment_key
from tools.data import Dataset, load
from tools.executor import JOURNAL_FILE, Executor, SimulatedExecutor
from tools.guardrails import GuardLimits, effective_limits
from tools.guardrails.limits import kill_switch_from_env
from tools.learning import LEARNING_FILE, LearningStore, OutcomeStore
from tools.ledger import DEFAULT_LEASE, LEDGER_FILE, ActionLedger, LedgerStore
from tools.routes import SegmentSnapshot, snapshot
from tools.scan_cache import ScanCache

CHECKPOINT_FILE = "checkpoints.db"


def scenario_id_of(dataset: Dataset) -> str:
    """The id actions and records use for the data: the scenario's, else the file name."""
    return dataset.scenario.id if dataset.scenario is not None else dataset.source.name


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """Everything a run needs besides its state: model, limits, data access, storage.

    `model` None means the deterministic reasoner decides alone. Datasets are loaded once
    per process and cached, so a resumed run (approve from a new process) reloads the
    same data from the path kept in the state. `executor` None means the simulator,
    journaled in the state directory. `clock` is the wall clock the ledger, its leases and
    pacing use (injectable in tests); `lease` how long a claim's owner is trusted.
    """

    config: PayopsConfig = field(default_factory=PayopsConfig)
    model: BaseChatModel | None = None
    state_dir: Path = field(default_factory=lambda: find_state_dir().path)
    baseline: TimeWindow | None = None
    current: TimeWindow | None = None
    executor: Executor | None = None
    clock: Callable[[], datetime] = _utcnow
    lease: timedelta = DEFAULT_LEASE
    _datasets: dict[str, Dataset] = field(default_factory=dict)
    _snapshots: dict[tuple[object, ...], SegmentSnapshot] = field(default_factory=dict)

    @cached_property
    def limits(self) -> GuardLimits:
        """The guard limits in force: code defaults, only ever tightened by config.

        Computed once per run, so a clamped setting is warned about once.
        """
        return effective_limits(self.config.guard)

    def current_limits(self) -> GuardLimits:
        """The limits with the kill switch as it is set right now (config or environment).

        A long-lived process (or an approval hours after the pause) sees the switch the
        moment PAYOPS_KILL_SWITCH is set.
        """
        limits = self.limits
        if limits.kill_switch or not kill_switch_from_env():
            return limits
        return limits.model_copy(update={"kill_switch": True})

    def dataset(self, source: str, lenient: bool, dimensions: list[str] | None) -> Dataset:
        """The loaded dataset of `source` (loaded on first use, through the scan cache).

        Loaded for this run's windows, so that observing them reads the file once.
        """
        key = f"{source}|{lenient}|{dimensions}"
        if key not in self._datasets:
            self._datasets[key] = load(
                Path(source),
                lenient=lenient,
                dimensions=dimensions,
                baseline=self.baseline,
                current=self.current,
                cache=ScanCache(self.state_dir / "cache"),
            )
        return self._datasets[key]

    def snapshot(
        self, dataset: Dataset, baseline: TimeWindow, current: TimeWindow, segment: Segment
    ) -> SegmentSnapshot:
        """The segment's snapshot, queried once per run: reason, guard and act share it."""
        key = (
            id(dataset),
            baseline.start,
            baseline.end,
            current.start,
            current.end,
            segment_key(segment),
        )
        if key not in self._snapshots:
            self._snapshots[key] = snapshot(dataset, baseline, current, segment)
        return self._snapshots[key]

    def path(self, name: str) -> Path:
        """A file in the state directory (created on first use)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir / name

    def learning_store(self) -> OutcomeStore:
        """The learning store of this state directory, with the configured retention."""
        return LearningStore(self.path(LEARNING_FILE), self.config.learning.retention_days)

    def ledger(self) -> LedgerStore:
        """The action ledger of this state directory."""
        return ActionLedger(self.path(LEDGER_FILE), clock=self.clock, lease=self.lease)

    def has_ledger(self) -> bool:
        """True once something was claimed here (reading history need not create the file)."""
        return (self.state_dir / LEDGER_FILE).exists()

    def approvals(self) -> ApprovalStore:
        """The approval requests and answers of this state directory."""
        return SqliteApprovalStore(self.path(APPROVALS_FILE), clock=self.clock)

    def action_executor(self) -> Executor:
        """The executor of this run: the one given, else the simulator with its journal."""
        if self.executor is not None:
            return self.executor
        return SimulatedExecutor(self.path(JOURNAL_FILE))
