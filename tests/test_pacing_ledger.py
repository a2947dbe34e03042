"""Pacing remembers payops's own actions.

A plain transactions file has no `recent_actions`, so before, the segment cooldown, the
hourly cap and page de-duplication saw nothing: ten runs in a row each shifted the same
50 % and each paged. Guard now also counts what the ledger holds (wall-clock time, an
injectable clock), and shifts on one segment add up under the step limit and the
exploration floor.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.context import Context
from agent.runner import RunResult, memory_checkpointer, start_run
from tests.counting_executor import CountingExecutor, calls_per_key
from tests.processes import DIMENSIONS
from tools.contract import TimeWindow
from tools.generate import GenerateOptions, generate_scenario

ROWS = 3_000
SEED = 1
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _plain(out: Path, kind: str) -> Path:
    """The transactions of a generated scenario as a bare CSV: no scenario.json, no context."""
    folder = generate_scenario(out, kind, SEED, ROWS, options=GenerateOptions(file_format="csv"))
    plain = out / f"{kind}.csv"
    shutil.copy(folder / "transactions.csv", plain)
    return plain


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processor outage whose remedy is a 50 % shift off acq_c."""
    return _plain(tmp_path_factory.mktemp("outage"), "processor_outage")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An issuer outage: nothing to reroute, the remedy is a page."""
    return _plain(tmp_path_factory.mktemp("issuer"), "issuer_outage")


@functools.cache
def _windows(source: Path) -> tuple[TimeWindow, TimeWindow]:
    """The baseline and current windows payops infers for `source`."""
    with tempfile.TemporaryDirectory() as probe:
        result = start_run(source, Context(state_dir=Path(probe)), memory_checkpointer())
    obs = result.state.observation
    assert obs is not None
    return obs.baseline, obs.current


def run(
    source: Path,
    home: Path,
    executor: CountingExecutor,
    *,
    clock: Callable[[], datetime] | None = None,
    moved_min: int = 0,
) -> RunResult:
    """One cycle in this process; `moved_min` moves both windows back (later data, a new key)."""
    ctx = Context(state_dir=home, executor=executor)
    if clock is not None:
        ctx.clock = clock
    if moved_min:
        baseline, current = _windows(source)
        m = timedelta(minutes=moved_min)
        ctx.baseline = TimeWindow(start=baseline.start - m, end=baseline.end - m)
        ctx.current = TimeWindow(start=current.start - m, end=current.end - m)
    return start_run(source, ctx, memory_checkpointer(), dimensions=DIMENSIONS)


def test_ten_runs_over_one_plain_file_shift_once_and_are_then_held_by_the_cooldown(
    outage: Path, tmp_path: Path
) -> None:
    executor = CountingExecutor(tmp_path / "executor")
    results = [run(outage, tmp_path / "home", executor) for _ in range(10)]
    first = results[0].record
    assert first.decision is not None and first.decision.action == "shift_traffic"
    assert first.verdict == "executed"
    assert sum(calls_per_key(tmp_path / "executor").values()) == 1
    for again in results[1:]:
        # The record says so: nothing was executed (before, it read "executed" ten times).
        assert again.record.verdict == "blocked" and again.record.outcome is None
        cooldown = [v for v in again.record.violations if v.rule == "segment_cooldown"]
        assert len(cooldown) == 1 and results[0].thread_id in cooldown[0].detail


def test_runs_on_moving_windows_do_not_repeat_the_shift(outage: Path, tmp_path: Path) -> None:
    # Each window is a new incident fingerprint and a new idempotency key: only pacing,
    # counting the ledger, can stop the same segment being shifted again.
    executor = CountingExecutor(tmp_path / "executor")
    results = [run(outage, tmp_path / "home", executor, moved_min=i) for i in range(6)]
    assert [r.record.verdict for r in results] == ["executed"] + ["blocked"] * 5
    assert sum(calls_per_key(tmp_path / "executor").values()) == 1


def test_ten_runs_page_once(issuer: Path, tmp_path: Path) -> None:
    executor = CountingExecutor(tmp_path / "executor")
    results = [run(issuer, tmp_path / "home", executor, moved_min=i) for i in range(10)]
    assert results[0].record.decision is not None
    assert results[0].record.decision.action == "notify_oncall"
    assert [r.record.verdict for r in results] == ["executed"] + ["blocked"] * 9
    assert all([v.rule for v in r.record.violations] == ["notify_dedup"] for r in results[1:])
    assert sum(calls_per_key(tmp_path / "executor").values()) == 1


def test_shifts_on_one_segment_add_up_within_the_hour(outage: Path, tmp_path: Path) -> None:
    executor = CountingExecutor(tmp_path / "executor")
    home = tmp_path / "home"
    first = run(outage, home, executor, clock=lambda: T0)
    assert first.record.verdict == "executed"

    # 20 minutes on, past the cooldown, the next 50 % would make 100 % off acq_c.
    later = run(outage, home, executor, clock=lambda: T0 + timedelta(minutes=20), moved_min=1)
    assert later.record.verdict == "blocked"
    rules = {v.rule: v.detail for v in later.record.violations}
    assert set(rules) == {"shift_step_limit", "shift_keep_exploration"}
    assert "on top of 50% already shifted off acq_c" in rules["shift_step_limit"]
    assert "100% in all" in rules["shift_step_limit"]

    # An hour on, the earlier shift is out of the rolling window: one more step may go.
    hour = run(outage, home, executor, clock=lambda: T0 + timedelta(minutes=61), moved_min=2)
    assert hour.record.verdict == "executed"
    assert sum(calls_per_key(tmp_path / "executor").values()) == 2
