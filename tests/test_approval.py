"""Human approval: the loop pauses, survives the process, and executes at most once.

A fraud-rule rollback needs a human (DOMAIN.md), so a fraud_rule_misfire scenario pauses
at `approve`. The tests drive `payops run/approve/reject` in separate processes, kill a
process inside `act` after the ledger claim, and check the approval node has no effects.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import interrupt as langgraph_interrupt

import agent.nodes
from agent.context import Context
from agent.runner import (
    RunError,
    chat_model,
    memory_checkpointer,
    resume_run,
    sqlite_checkpointer,
    start_run,
)
from agent.state import Approval
from tests.test_graph import ROWS, SEED, ledger_rows
from tools.contract import Decision, Outcome, RunRecord, ScenarioContext
from tools.executor import JOURNAL_FILE, SimulatedExecutor
from tools.generate import GenerateOptions, generate_scenario
from tools.learning import LEARNING_FILE, LearningStore
from tools.routes import SegmentSnapshot

# Environment a user may have set that would change what these runs do.
_FOREIGN_ENV = ("PAYOPS_KILL_SWITCH", "PAYOPS_CONFIG")
PAYOPS = Path(sys.executable).with_name("payops")
CLI_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def fraud(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fraud-rule misfire with its rule change in the context: rollback needs a human."""
    out = tmp_path_factory.mktemp("scenarios")
    return generate_scenario(
        out, "fraud_rule_misfire", SEED, ROWS, options=GenerateOptions(file_format="csv")
    )


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env["PAYOPS_HOME"] = str(home)
    env["COLUMNS"] = "200"  # rich wraps at 80 columns without a terminal
    env.update(extra or {})
    return env


def _command(*args: str) -> list[str]:
    if PAYOPS.exists():
        return [str(PAYOPS), *args]
    return [sys.executable, "-c", "from agent.cli import main; main()", *args]


def payops(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`payops ARGS` in a new process with its state in `home` (and `env` on top)."""
    return subprocess.run(
        _command(*args),
        env=_env(home, env),
        cwd=home.parent,  # no stray ./payops.toml
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def payops_started(home: Path, *args: str) -> subprocess.Popen[str]:
    """`payops ARGS` started in a new process (read it with `finish`)."""
    return subprocess.Popen(
        _command(*args),
        env=_env(home),
        cwd=home.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a started process."""
    stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT_S)
    return proc.returncode, stdout, stderr


def record_of(stdout: str) -> RunRecord:
    """The JSON record `--json` prints (one line)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    return RunRecord.model_validate(json.loads(lines[0]))


def learned_count(home: Path) -> int:
    """Outcomes in the learning store (0 if it does not exist yet)."""
    if not (home / LEARNING_FILE).exists():
        return 0
    with LearningStore(home / LEARNING_FILE) as store:
        return store.count()


# ---------------------------------------------------------------------------------------
# The CLI across processes.


def test_cli_pauses_then_one_approval_in_a_new_process_executes_once(
    fraud: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    as_json = payops_started(home, "run", str(fraud), "--json")
    readable = payops_started(home, "run", str(fraud))
    code, stdout, stderr = finish(as_json)
    assert code == 0, stderr
    paused = record_of(stdout)
    assert paused.verdict == "needs_approval"
    assert paused.decision is not None and paused.decision.action == "rollback_config"
    assert paused.outcome is None

    code, stdout, stderr = finish(readable)
    assert code == 0, stderr
    found = re.search(r"thread id: (\S+)", stdout)
    assert found, stdout
    thread = found.group(1)
    assert f"payops approve {thread}" in stdout
    assert ledger_rows(home) == []  # two paused runs, nothing executed

    approved = payops(home, "approve", thread, "--by", "alice", "--json")
    assert approved.returncode == 0, approved.stderr
    done = record_of(approved.stdout)
    assert done.verdict == "executed"
    assert done.decision == paused.decision
    assert done.outcome is not None and done.outcome.improvement > 0
    rows = ledger_rows(home)
    assert [(t, a, s) for _, t, a, s in rows] == [(thread, "rollback_config", "executed")]

    again = payops(home, "approve", thread)
    assert again.returncode != 0
    message = again.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert thread in message and "no pending approval" in message
    assert "Traceback" not in again.stderr
    assert ledger_rows(home) == rows


def test_cli_reject_blocks_and_records_the_refusal(fraud: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx = Context(model=chat_model(None), state_dir=home)
    with sqlite_checkpointer(home) as saver:
        pending = start_run(fraud, ctx, saver)
    assert pending.record.verdict == "needs_approval"

    why = "fraud team is reviewing r-rules first"
    rejected = payops(home, "reject", pending.thread_id, "--reason", why, "--json")
    assert rejected.returncode == 0, rejected.stderr
    record = record_of(rejected.stdout)
    assert record.verdict == "blocked"
    assert record.outcome is None
    refusals = [v for v in record.violations if v.rule == "human_rejected"]
    assert len(refusals) == 1 and why in refusals[0].detail
    assert ledger_rows(home) == []
    with LearningStore(home / LEARNING_FILE) as store:
        stats = store.stats("action")
    assert [(s.action, s.count, s.executed) for s in stats] == [("rollback_config", 1, 0)]


def test_cli_readable_approve_shows_the_approval_and_the_outcome(
    fraud: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ctx = Context(model=chat_model(None), state_dir=home)
    with sqlite_checkpointer(home) as saver:
        pending = start_run(fraud, ctx, saver)
    approved = payops(home, "approve", pending.thread_id, "--by", "alice", "--reason", "ok")
    assert approved.returncode == 0, approved.stderr
    assert "Traceback" not in approved.stderr
    assert "approved by alice: ok" in approved.stdout
    # The approved action names its segment (the paused run's decision), then its outcome.
    assert "success rate of merchant_id=" in approved.stdout
    assert "outcome: executed" in approved.stdout


# ---------------------------------------------------------------------------------------
# A process killed inside act.


class StallingExecutor:
    """The simulator, but it first signals `marker` and stalls: a process to kill in act."""

    def __init__(self, marker: Path, home: Path) -> None:
        self.marker = marker
        self.simulator = SimulatedExecutor(home / JOURNAL_FILE)

    def execute(
        self,
        decision: Decision,
        idempotency_key: str,
        snap: SegmentSnapshot,
        context: ScenarioContext,
    ) -> Outcome:
        """Signal, stall for a minute (the test kills us first), then simulate."""
        self.marker.write_text(idempotency_key, encoding="utf-8")
        time.sleep(60)
        return self.simulator.execute(decision, idempotency_key, snap, context)

    def applied(self, idempotency_key: str) -> Outcome | None:
        """What the simulator's journal holds."""
        return self.simulator.applied(idempotency_key)


def approve_and_stall(home: str, thread_id: str, marker: str) -> None:
    """Child process: approve `thread_id`, then stall inside act after the ledger claim."""
    ctx = Context(state_dir=Path(home), executor=StallingExecutor(Path(marker), Path(home)))
    with sqlite_checkpointer(ctx.state_dir) as saver:
        resume_run(thread_id, Approval(approved=True, by="first-operator"), ctx, saver)


def test_process_killed_inside_act_is_finished_once_by_a_new_process(
    fraud: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    ctx = Context(model=chat_model(None), state_dir=home)
    with sqlite_checkpointer(home) as saver:
        pending = start_run(fraud, ctx, saver)
    assert pending.record.verdict == "needs_approval"

    marker = tmp_path / "inside-act"
    child = multiprocessing.get_context("spawn").Process(
        target=approve_and_stall, args=(str(home), pending.thread_id, str(marker))
    )
    child.start()
    try:
        deadline = time.monotonic() + CLI_TIMEOUT_S
        while not marker.exists():
            assert child.is_alive(), f"child exited with {child.exitcode} before act"
            assert time.monotonic() < deadline, "child never reached act"
            time.sleep(0.05)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(CLI_TIMEOUT_S)
    assert child.exitcode == -signal.SIGKILL
    # Killed between the ledger claim and the recorded outcome: in doubt, not executed.
    assert [(a, s) for _, _, a, s in ledger_rows(home)] == [("rollback_config", "claimed")]

    # The approval was recorded before act: it cannot be turned into a rejection now.
    with sqlite_checkpointer(home) as saver, pytest.raises(RunError, match="already approved"):
        resume_run(pending.thread_id, Approval(approved=False, reason="too late"), ctx, saver)

    finished = payops(home, "approve", pending.thread_id, "--json")
    assert finished.returncode == 0, finished.stderr
    record = record_of(finished.stdout)
    assert record.verdict == "executed"
    assert record.outcome is not None
    rows = ledger_rows(home)
    assert [(t, a, s) for _, t, a, s in rows] == [
        (pending.thread_id, "rollback_config", "executed")
    ]
    assert learned_count(home) == 1


# ---------------------------------------------------------------------------------------
# The approval node itself.


def test_approval_node_has_no_side_effects_and_reruns_from_its_top(
    fraud: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []  # (ledger rows, learned outcomes) at each interrupt

    def watching_interrupt(value: Any) -> Any:
        seen.append((len(ledger_rows(tmp_path)), learned_count(tmp_path)))
        return langgraph_interrupt(value)

    monkeypatch.setattr(agent.nodes, "interrupt", watching_interrupt)
    ctx = Context(model=chat_model(None), state_dir=tmp_path)
    saver = memory_checkpointer()
    pending = start_run(fraud, ctx, saver)

    request = pending.pending
    assert request is not None
    assert request.decision == pending.record.decision
    assert request.root_cause == pending.record.root_cause
    assert request.reasons  # the human is told why they are asked
    assert pending.state.outcome is None and pending.state.idempotency_key is None
    assert seen == [(0, 0)]

    done = resume_run(pending.thread_id, Approval(approved=True), ctx, saver)
    # The node re-ran from its top on resume, and still nothing had been written.
    assert seen == [(0, 0), (0, 0)]
    assert done.record.verdict == "executed"
    assert len(ledger_rows(tmp_path)) == 1
    assert learned_count(tmp_path) == 1
