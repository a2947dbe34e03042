"""Exactly-once reaches the executor, with several processes on one state directory.

Each executor call is counted by `CountingExecutor` (a log line per call, whatever the
process), so the tests check what the routing system would see: every idempotency key
arrives once. Before, a claim that was in doubt was "reconciled" by executing again, even
while its owner was still executing: 4 concurrent runs sent the same action 4 times.
Also here: the state databases' first open, raced by many processes at once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.context import Context
from agent.runner import sqlite_checkpointer, start_run
from tests.counting_executor import calls_per_key
from tests.processes import DIMENSIONS, FAST, answer, join_all, open_state, run_cycle, start
from tests.test_graph import ledger_rows
from tools.approvals import APPROVALS_FILE, SqliteApprovalStore
from tools.executor import JOURNAL_FILE, SimulatorJournal
from tools.generate import GenerateOptions, generate_scenario
from tools.learning import LEARNING_FILE, LearningStore
from tools.ledger import LEDGER_FILE, ActionLedger

ROWS = 3_000
SEED = 1
STALL_S = 0.3  # the executor's call takes this long: the others arrive while it is in doubt
TRIALS = 6  # fresh state directories opened by 8 processes at once


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processor outage whose remedy (a shift) executes without a human."""
    out = tmp_path_factory.mktemp("outage")
    opts = GenerateOptions(file_format="csv")
    return generate_scenario(out, "processor_outage", SEED, ROWS, options=opts)


@pytest.fixture(scope="module")
def fraud(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fraud-rule misfire: its rollback waits for a human."""
    out = tmp_path_factory.mktemp("fraud")
    opts = GenerateOptions(file_format="csv")
    return generate_scenario(out, "fraud_rule_misfire", SEED, ROWS, options=opts)


@pytest.mark.parametrize("processes", [4, 8])
def test_concurrent_runs_send_each_key_to_the_executor_once(
    outage: Path, tmp_path: Path, processes: int
) -> None:
    home = tmp_path / "home"
    barrier, results = FAST.Barrier(processes), FAST.Queue()
    procs = [
        start(run_cycle, str(home), str(outage), STALL_S, barrier, results)
        for _ in range(processes)
    ]
    assert join_all(procs) == [0] * processes
    verdicts = [results.get(timeout=10) for _ in procs]
    calls = calls_per_key(home / "executor")
    assert len(calls) == 1 and set(calls.values()) == {1}, calls
    # The others either waited for the owner's outcome or were held by the cooldown.
    assert set(verdicts) <= {"executed", "blocked"} and "executed" in verdicts
    assert [status for *_, status in ledger_rows(home)] == ["executed"]


@pytest.mark.parametrize("processes", [4, 8])
def test_concurrent_approvals_send_the_action_once(
    fraud: Path, tmp_path: Path, processes: int
) -> None:
    home = tmp_path / "home"
    with sqlite_checkpointer(home) as saver:
        thread = start_run(fraud, Context(state_dir=home), saver, dimensions=DIMENSIONS).thread_id
    barrier, results = FAST.Barrier(processes), FAST.Queue()
    procs = [
        start(answer, str(home), thread, True, STALL_S, barrier, results) for _ in range(processes)
    ]
    assert join_all(procs) == [0] * processes
    answers = [results.get(timeout=10) for _ in procs]
    assert all(a[:2] == (True, "won") and a[2] == "executed" for a in answers), answers
    calls = calls_per_key(home / "executor")
    assert list(calls.values()) == [1], calls
    with LearningStore(home / LEARNING_FILE) as store:
        assert store.count() == 1


# ---------------------------------------------------------------------------------------
# First opens.


def test_many_processes_opening_a_new_state_directory_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    failures = []
    for trial in range(TRIALS):
        home = tmp_path / f"home-{trial}"
        barrier, results = FAST.Barrier(8), FAST.Queue()
        procs = [start(open_state, str(home), barrier, results) for _ in range(8)]
        assert join_all(procs) == [0] * 8
        failures += [r for r in (results.get(timeout=10) for _ in procs) if r != "ok"]
    assert failures == []


OPENERS: dict[str, Callable[[Path], object]] = {
    "checkpoints.db": lambda home: _open_checkpoints(home),
    LEDGER_FILE: lambda home: ActionLedger(home / LEDGER_FILE).close(),
    LEARNING_FILE: lambda home: LearningStore(home / LEARNING_FILE).close(),
    APPROVALS_FILE: lambda home: SqliteApprovalStore(home / APPROVALS_FILE).close(),
    JOURNAL_FILE: lambda home: SimulatorJournal(home / JOURNAL_FILE).close(),
}


def _open_checkpoints(home: Path) -> None:
    with sqlite_checkpointer(home) as saver:
        saver.list(None)


@pytest.mark.parametrize("name", list(OPENERS))
def test_a_first_open_waits_while_another_process_holds_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # The race, made deterministic: another process holds the write lock of the new file
    # while it is still in rollback mode (as when it is switching it to WAL). SQLite then
    # fails `PRAGMA journal_mode=WAL` at once, busy timeout or not. The other process lets
    # go as soon as this one backs off to retry.
    home = tmp_path / "home"
    home.mkdir()
    holder = sqlite3.connect(home / name, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    backoffs: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if not backoffs:
            holder.execute("ROLLBACK")
        backoffs.append(seconds)
        real_sleep(0)

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        OPENERS[name](home)
    finally:
        holder.close()
    assert backoffs, "the lock was never met"
