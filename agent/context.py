"""Run settings, passed to the graph as its runtime context (never read from globals).

Two sides: `Context` is what investigation reads (config, model, windows, limits, datasets,
segment snapshots, the learning store, a read-only view of the ledger's history), and its
`ports` (`ActionPorts`) are what only acting touches: the executor, the ledger's claims and
the approval store. Only `agent.acting` and the entry points that ask for and answer
approvals (`agent.runner`, `agent.chat.session`) use the ports; tests/test_layers.py fails
on any other module that does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from tools.approvals import APPROVALS_FILE, ApprovalStore, SqliteApprovalStore
from tools.config import PayopsConfig, find_state_dir
from tools.contract import Segment, TimeWindow, segment_key
from tools.data import Dataset, load
from tools.executor import JOURNAL_FILE, Executor, SimulatedExecutor
from tools.fields import utc_now
from tools.guardrails import GuardLimits, effective_limits
from tools.guardrails.limits import kill_switch_from_env
from tools.learning import LEARNING_FILE, LearningStore, OutcomeStore
from tools.ledger import (
    DEFAULT_LEASE,
    LEDGER_FILE,
    ActionLedger,
    LedgerHistory,
    LedgerStore,
    LedgerView,
)
from tools.routes import SegmentSnapshot, snapshot
from tools.scan_cache import ScanCache

CHECKPOINT_FILE = "checkpoints.db"


def scenario_id_of(dataset: Dataset) -> str:
    """The id actions and records use for the data: the scenario's, else the file name."""
    return dataset.scenario.id if dataset.scenario is not None else dataset.source.name


def state_path(state_dir: Path, name: str) -> Path:
    """A file in the state directory (the directory is created on first use)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return state_dir / name


@dataclass(frozen=True)
class DatasetKey:
    """What a loaded dataset is cached under: the same file read the same way."""

    source: str
    lenient: bool
    dimensions: tuple[str, ...] | None

    @classmethod
    def of(cls, source: str, lenient: bool, dimensions: list[str] | None) -> DatasetKey:
        """The key of `load(source, lenient=..., dimensions=...)`."""
        return cls(source, lenient, None if dimensions is None else tuple(dimensions))


@dataclass(frozen=True)
class ActionPorts:
    """What only acting may touch: the executor, the ledger's claims, the approval store.

    All live in `state_dir`. `executor` None means the simulator, journaled there. `clock`
    is the wall clock the ledger, its leases, pacing and approvals use (injectable in
    tests); `lease` how long a claim's owner is trusted.
    """

    state_dir: Path = field(default_factory=lambda: find_state_dir().path)
    clock: Callable[[], datetime] = utc_now
    lease: timedelta = DEFAULT_LEASE
    executor: Executor | None = None

    def ledger(self) -> LedgerStore:
        """The action ledger of this state directory, to claim and record actions."""
        path = state_path(self.state_dir, LEDGER_FILE)
        return ActionLedger(path, clock=self.clock, lease=self.lease)

    def has_ledger(self) -> bool:
        """True once something was claimed here (reading history need not create the file)."""
        return (self.state_dir / LEDGER_FILE).exists()

    def approvals(self) -> ApprovalStore:
        """The approval requests and answers of this state directory."""
        return SqliteApprovalStore(state_path(self.state_dir, APPROVALS_FILE), clock=self.clock)

    def action_executor(self) -> Executor:
        """The executor: the one given, else the simulator with its journal."""
        if self.executor is not None:
            return self.executor
        return SimulatedExecutor(state_path(self.state_dir, JOURNAL_FILE))


@dataclass(frozen=True, eq=False)
class Context:
    """What a run reads besides its state: model, limits, windows, data, stores to read.

    `model` None means the deterministic reasoner decides alone. `baseline` and `current`
    None mean the windows are inferred from the data. Datasets are loaded once per process
    and cached, so a resumed run (approve from a new process) reloads the same data from
    the path kept in the state. `ports` are acting's (see the module docstring).
    """

    config: PayopsConfig = field(default_factory=PayopsConfig)
    model: BaseChatModel | None = None
    baseline: TimeWindow | None = None
    current: TimeWindow | None = None
    ports: ActionPorts = field(default_factory=ActionPorts)
    # Caches, shared by the copies `dataclasses.replace` makes.
    _datasets: dict[DatasetKey, Dataset] = field(default_factory=dict, repr=False)
    _snapshots: dict[tuple[object, ...], SegmentSnapshot] = field(default_factory=dict, repr=False)

    @property
    def state_dir(self) -> Path:
        """The state directory: checkpoints, the learning store and the ports' files."""
        return self.ports.state_dir

    @property
    def clock(self) -> Callable[[], datetime]:
        """The wall clock of this run's stores."""
        return self.ports.clock

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
        key = DatasetKey.of(source, lenient, dimensions)
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
        return state_path(self.state_dir, name)

    def learning_store(self) -> OutcomeStore:
        """The learning store of this state directory, with the configured retention."""
        return LearningStore(self.path(LEARNING_FILE), self.config.learning.retention_days)

    @contextmanager
    def action_history(self) -> Iterator[LedgerHistory]:
        """The ledger's history, read-only: what pacing counts and what was executed.

        Without a ledger yet it reads as empty (and creates none).
        """
        ports = self.ports
        if not ports.has_ledger():
            yield LedgerView(None, ports.clock)
            return
        with ports.ledger() as ledger:
            yield LedgerView(ledger, ports.clock)
