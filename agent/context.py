"""Run settings, passed to the graph as its runtime context (never read from globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from tools.config import PayopsConfig, state_home
from tools.contract import Segment, TimeWindow, segment_key
from tools.data import Dataset, load
from tools.executor import Executor, SimulatedExecutor
from tools.guardrails import GuardLimits, effective_limits
from tools.learning import LEARNING_FILE, LearningStore
from tools.ledger import LEDGER_FILE, ActionLedger
from tools.routes import SegmentSnapshot, snapshot
from tools.scan_cache import ScanCache

CHECKPOINT_FILE = "checkpoints.db"


@dataclass
class Context:
    """Everything a run needs besides its state: model, limits, data access, storage.

    `model` None means the deterministic reasoner decides alone. Datasets are loaded once
    per process and cached, so a resumed run (approve from a new process) reloads the
    same data from the path kept in the state.
    """

    config: PayopsConfig = field(default_factory=PayopsConfig)
    model: BaseChatModel | None = None
    state_dir: Path = field(default_factory=state_home)
    baseline: TimeWindow | None = None
    current: TimeWindow | None = None
    executor: Executor = field(default_factory=SimulatedExecutor)
    _datasets: dict[str, Dataset] = field(default_factory=dict)
    _snapshots: dict[tuple[object, ...], SegmentSnapshot] = field(default_factory=dict)

    @cached_property
    def limits(self) -> GuardLimits:
        """The guard limits in force: code defaults, only ever tightened by config.

        Computed once per run, so a clamped setting is warned about once.
        """
        return effective_limits(self.config.guard)

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

    def learning_store(self) -> LearningStore:
        """The learning store of this state directory, with the configured retention."""
        return LearningStore(self.path(LEARNING_FILE), self.config.learning.retention_days)

    def ledger(self) -> ActionLedger:
        """The action ledger of this state directory."""
        return ActionLedger(self.path(LEDGER_FILE))
