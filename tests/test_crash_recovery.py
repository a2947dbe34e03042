"""kill -9 anywhere in `run` and `approve`: nothing is lost, nothing is executed twice.

Each case kills a child process with SIGKILL at one point: between or around LangGraph's
checkpoint writes (the n-th `put` or `put_writes`, before or after it), or at one of
payops's own crash points (`tools.crashpoints`: after the approval's compare-and-set,
the ledger claim, the executor call, the recorded outcome, the learned outcome, ...).
Then `approve` is given, as a user would, until the cycle ends. Every case must end with:

- the action sent to the executor once (0 double calls);
- the approval recorded and applied (0 lost approvals);
- one outcome in the ledger and one in the learning store (0 lost outcomes);
- the thread finished (no pending task left), or, killed before its first checkpoint,
  no trace at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.graph import compile_graph
from agent.runner import RunError, resume_run, sqlite_checkpointer, start_run
from agent.state import Approval
from tests.counting_executor import calls_per_key
from tests.processes import DIMENSIONS, counted_context, crash_cycle, join_all, start
from tests.test_graph import ledger_rows
from tools.approvals import APPROVALS_FILE, SqliteApprovalStore
from tools.generate import GenerateOptions, generate_scenario
from tools.learning import LEARNING_FILE, LearningStore

ROWS = 3_000
SEED = 1
THREAD = "crash-1"

# A pausing run writes 5 checkpoints (put) and 5 batches of task writes (put_writes); the
# approval 3 and 4. "put after n" leaves the state "put_writes before n+1" would.
RUN_POINTS = [
    *(f"ckpt:put:before:{n}" for n in range(1, 6)),
    *(f"ckpt:put:after:{n}" for n in range(1, 6)),
    *(f"ckpt:put_writes:after:{n}" for n in range(1, 6)),
    "run:paused",
]
APPROVE_POINTS = [
    "ckpt:put_writes:before:1",
    *(f"ckpt:put_writes:after:{n}" for n in range(1, 5)),
    *(f"ckpt:put:before:{n}" for n in range(1, 4)),
    *(f"ckpt:put:after:{n}" for n in range(1, 4)),
    "approval:answered",
    "act:claimed",
    "act:executed",
    "act:recorded",
    "learn:recorded",
    "act:claimed>act:taken_over",  # killed in act, then the reconciler killed too
]


@pytest.fixture(scope="module")
def fraud(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fraud-rule misfire: its rollback waits for a human."""
    out = tmp_path_factory.mktemp("fraud")
    opts = GenerateOptions(file_format="csv")
    return generate_scenario(out, "fraud_rule_misfire", SEED, ROWS, options=opts)


@pytest.fixture(scope="module")
def paused(fraud: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory holding THREAD, paused for approval."""
    home = tmp_path_factory.mktemp("paused") / "home"
    ctx = counted_context(str(home))
    with sqlite_checkpointer(home) as saver:
        result = start_run(fraud, ctx, saver, thread_id=THREAD, dimensions=DIMENSIONS)
    assert result.record.verdict == "needs_approval"
    return home


def kill(home: Path, scenario: Path | None, point: str) -> None:
    """Run (or, without a scenario, approve) THREAD in a child killed at `point`."""
    child = start(crash_cycle, str(home), str(scenario or ""), THREAD, point, DIMENSIONS)
    assert join_all([child]) == [-9], f"the child was not killed at {point}"


def finish(home: Path) -> str | None:
    """Approve THREAD until its cycle ends; its verdict, or None if it never started."""
    verdict = None
    for _ in range(3):  # killed before its question: once to reach it, once to answer it
        ctx = counted_context(str(home))
        try:
            with sqlite_checkpointer(home) as saver:
                result = resume_run(THREAD, Approval(approved=True, by="alice"), ctx, saver)
        except RunError as exc:
            if "no run with thread id" in str(exc):
                return None
            # Killed after its last checkpoint: the cycle had ended; the answer says so.
            assert "has no pending approval: it was already approved" in str(exc), exc
            return str(exc).rpartition("its verdict is ")[2].rstrip(")")
        verdict = result.record.verdict
        if result.pending is None:
            break
    return verdict


def check_nothing_lost(home: Path) -> None:
    """One executor call, one ledger outcome, one learned outcome, the approval, no task left."""
    calls = calls_per_key(home / "executor")
    assert list(calls.values()) == [1], calls
    (key,) = calls
    assert [(k, status) for k, _, _, status in ledger_rows(home)] == [(key, "executed")]
    export = home / "learned.json"
    with LearningStore(home / LEARNING_FILE) as store:
        store.export(export)
    learned = json.loads(export.read_text(encoding="utf-8"))
    assert [(o["verdict"], o["idempotency_key"]) for o in learned] == [("executed", key)]
    with SqliteApprovalStore(home / APPROVALS_FILE) as approvals:
        record = approvals.get(THREAD)
    assert record is not None and record.status == "approved" and record.answered_by == "alice"
    with sqlite_checkpointer(home) as saver:
        snapshot = compile_graph(saver).get_state({"configurable": {"thread_id": THREAD}})
    assert snapshot.next == () and snapshot.tasks == ()
    assert snapshot.values["verdict"] == "executed"


@pytest.mark.parametrize("point", RUN_POINTS)
def test_killed_during_run(fraud: Path, tmp_path: Path, point: str) -> None:
    home = tmp_path / "home"
    kill(home, fraud, point)
    verdict = finish(home)
    if verdict is None:  # killed before the first checkpoint: nothing happened at all
        assert calls_per_key(home / "executor") == {} and ledger_rows(home) == []
        return
    assert verdict == "executed"
    check_nothing_lost(home)


@pytest.mark.parametrize("point", APPROVE_POINTS)
def test_killed_during_approve(paused: Path, tmp_path: Path, point: str) -> None:
    home = tmp_path / "home"
    shutil.copytree(paused, home)
    for step in point.split(">"):
        kill(home, None, step)
    assert finish(home) == "executed"
    check_nothing_lost(home)
