"""What chat turns share within a process: the loaded data, its windows and cached work.

An `Investigation` is one dataset seen through one pair of windows. It computes observe's
findings once, and keeps each pair of windows' leaf cube on a DuckDB connection of its own:
observe and the cube use fixed temporary-table names, temporary tables belong to a
connection, and `ToolNode` runs the tool calls of one model message in parallel threads, so
no two calls may share one. Every other query runs on a fresh cursor (`Investigation.cursor`).
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import duckdb
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.context import Context, scenario_id_of
from tools import sql
from tools.config import ObserveConfig
from tools.contract import ScenarioContext, Segment, TimeWindow
from tools.data import Dataset
from tools.metrics import build_leaf_cube, dimension_values
from tools.observe import CUBE as OBSERVE_CUBE
from tools.observe import Observation, observe, resolve_windows
from tools.routes import SegmentSnapshot, snapshot

T = TypeVar("T")

CHAT_CUBE = "chat_leaf"
# A tool result sent to the model is at most this many characters of JSON (about 1.5k
# tokens): a share of even a small model's context, as HolmesGPT caps each result.
TOOL_BUDGET_CHARS = 6000
# Model calls per turn before the turn is stopped, and how long one call may take.
MAX_STEPS = 8
MODEL_DEADLINE_S = 60.0

WindowKey = tuple[str, str, str, str]


def _window_key(baseline: TimeWindow, current: TimeWindow) -> WindowKey:
    return (
        baseline.start.isoformat(),
        baseline.end.isoformat(),
        current.start.isoformat(),
        current.end.isoformat(),
    )


def fold(text: str) -> str:
    """Text compared by meaning, not spelling: Unicode NFKC, case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Vocabulary:
    """The names that occur in the data: dimension values (with attempts) and failure codes.

    The stub reads questions with it, and tool arguments are normalised with it, so
    `BR`, `br` and a full-width `ＢＲ` name the same issuer country.
    """

    values: Mapping[str, Mapping[str, int]]
    codes: frozenset[str]
    processors: tuple[str, ...]

    @property
    def dimensions(self) -> list[str]:
        """The segment dimensions of the data, in order."""
        return list(self.values)

    def canonical(self, dimension: str, value: str) -> str:
        """The data's spelling of `value` in `dimension` (unchanged when it does not occur)."""
        known = self.values.get(dimension, {})
        if value in known:
            return value
        folded = fold(value.strip())
        for candidate in known:
            if fold(candidate) == folded:
                return candidate
        return value.strip()

    def canonical_dimension(self, name: str) -> str | None:
        """The data's dimension called `name` (any case), or None."""
        folded = fold(name.strip()).replace(" ", "_")
        return next((d for d in self.values if fold(d) == folded), None)


@dataclass
class _CubeSlot:
    """One pair of windows: its connection, the lock its queries take, its cube's name."""

    conn: duckdb.DuckDBPyConnection
    lock: threading.Lock = field(default_factory=threading.Lock)
    cube: str | None = None


def _has_cube(conn: duckdb.DuckDBPyConnection, cube: str) -> bool:
    found = conn.execute(sql.TEMP_TABLE_EXISTS, {"name": f"{cube}_counts"}).fetchone()
    return bool(found and found[0])


class Investigation:
    """One dataset and its default windows; observations and cubes computed once."""

    def __init__(
        self,
        dataset: Dataset,
        config: ObserveConfig,
        baseline: TimeWindow,
        current: TimeWindow,
    ) -> None:
        self.dataset = dataset
        self.config = config
        self.baseline = baseline
        self.current = current
        self.scenario_id = scenario_id_of(dataset)
        self.scenario_context = (
            dataset.scenario.context if dataset.scenario is not None else ScenarioContext()
        )
        self._lock = threading.Lock()
        self._observations: dict[WindowKey, Observation] = {}
        self._cubes: dict[WindowKey, _CubeSlot] = {}
        self._vocabulary: Vocabulary | None = None

    @contextmanager
    def cursor(self) -> Iterator[Dataset]:
        """The dataset on a connection of its own, closed afterwards."""
        conn = self.dataset.conn.cursor()
        try:
            yield replace(self.dataset, conn=conn)
        finally:
            conn.close()

    def _cube_slot(self, key: WindowKey) -> _CubeSlot:
        with self._lock:
            if key not in self._cubes:
                self._cubes[key] = _CubeSlot(self.dataset.conn.cursor())
            return self._cubes[key]

    def observation(
        self, baseline: TimeWindow | None = None, current: TimeWindow | None = None
    ) -> Observation:
        """observe's findings for the windows (default: the investigation's), computed once.

        observe runs on the connection that keeps the windows' cube, so the leaf cube it
        builds serves the drill-downs that follow without a second scan.
        """
        baseline, current = baseline or self.baseline, current or self.current
        key = _window_key(baseline, current)
        slot = self._cube_slot(key)
        with slot.lock:
            if key not in self._observations:
                ds = replace(self.dataset, conn=slot.conn)
                self._observations[key] = observe(
                    ds, self.config, baseline=baseline, current=current
                )
                if slot.cube is None and _has_cube(slot.conn, OBSERVE_CUBE):
                    slot.cube = OBSERVE_CUBE
            return self._observations[key]

    def with_cube(
        self,
        baseline: TimeWindow,
        current: TimeWindow,
        query: Callable[[duckdb.DuckDBPyConnection, str], T],
    ) -> T:
        """Run `query(connection, cube_name)` on the leaf cube of the two windows.

        The cube is observe's when observe ran on these windows, else built on first use;
        it stays on its own connection, and queries on one cube take turns.
        """
        slot = self._cube_slot(_window_key(baseline, current))
        with slot.lock:
            if slot.cube is None:
                build_leaf_cube(
                    slot.conn, self.dataset.table, self.dataset.dimensions, baseline, current,
                    cube=CHAT_CUBE,
                )  # fmt: skip
                slot.cube = CHAT_CUBE
            return query(slot.conn, slot.cube)

    def snapshot(self, segment: Segment) -> SegmentSnapshot:
        """The segment and its routes over the default windows (what guard and act read)."""
        with self.cursor() as ds:
            return snapshot(ds, self.baseline, self.current, segment)

    def vocabulary(self) -> Vocabulary:
        """The data's dimension values and failure codes (one scan, then kept)."""
        with self._lock:
            if self._vocabulary is None:
                with self.cursor() as ds:
                    dims = list(ds.dimensions)
                    extra = [] if "decline_code" in dims else ["decline_code"]
                    found = dimension_values(ds.conn, ds.table, dims + extra)
                codes = frozenset(c for c in found.pop("decline_code", {}) if c)
                if "decline_code" in dims:
                    codes = frozenset(c for c in found["decline_code"] if c)
                processors = list(found.get("processor", {}))
                processors += [p for p in self.scenario_context.processors if p not in processors]
                self._vocabulary = Vocabulary(found, codes, tuple(processors))
            return self._vocabulary

    def close(self) -> None:
        """Close the cube connections."""
        with self._lock:
            for slot in self._cubes.values():
                slot.conn.close()
            self._cubes.clear()


@dataclass
class ChatContext(Context):
    """The loop's run settings plus what chat needs: the checkpointer the loop's runs are
    in (for `explain_decision`), a result budget, a step limit and a model deadline.

    `model` None means the offline stub, built for the data it reads.
    """

    checkpointer: BaseCheckpointSaver[Any] | None = None
    tool_budget_chars: int = TOOL_BUDGET_CHARS
    max_steps: int = MAX_STEPS
    model_deadline_s: float = MODEL_DEADLINE_S
    _investigations: dict[tuple[object, ...], Investigation] = field(default_factory=dict)
    _stubs: dict[int, BaseChatModel] = field(default_factory=dict)
    _chat_lock: threading.Lock = field(default_factory=threading.Lock)

    def investigation(
        self,
        source: str,
        lenient: bool = False,
        dimensions: list[str] | None = None,
        baseline: TimeWindow | None = None,
        current: TimeWindow | None = None,
    ) -> Investigation:
        """The investigation of `source` over the given (else the scenario's, else inferred)
        windows, loaded on first use."""
        key = (source, lenient, tuple(dimensions or ()), baseline, current)
        with self._chat_lock:
            if key not in self._investigations:
                dataset = self.dataset(source, lenient, dimensions)
                conn = dataset.conn.cursor()
                try:
                    base, cur = resolve_windows(replace(dataset, conn=conn), baseline, current)
                finally:
                    conn.close()
                self._investigations[key] = Investigation(dataset, self.config.observe, base, cur)
            return self._investigations[key]

    def chat_model(self, investigation: Investigation) -> BaseChatModel:
        """The configured model, else the offline stub for this investigation's data."""
        if self.model is not None:
            return self.model
        from agent.chat.stub import ChatStubModel

        with self._chat_lock:
            key = id(investigation)
            if key not in self._stubs:
                self._stubs[key] = ChatStubModel(vocabulary=investigation.vocabulary())
            return self._stubs[key]

    def close(self) -> None:
        """Close every investigation's connections."""
        with self._chat_lock:
            for inv in self._investigations.values():
                inv.close()
