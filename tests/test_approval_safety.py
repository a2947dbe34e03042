"""A human's answer counts once, and guard still has the last word when it is given.

- Approve against reject: answering is one compare-and-set on the pending request. Of two
  answers racing, one wins; the other is told who answered first (one line, exit 2); the
  learning store holds one outcome, the winner's.
- Guard runs again at approval, against the current state: the kill switch (config or
  PAYOPS_KILL_SWITCH) and processor health. What it blocks then is blocked, and the reason
  is shown, in text and in --json.
- A run that fails before acting leaves no dead thread in the checkpoint database; one
  that fails inside act stays, and `approve` finishes it. One killed before it asked is
  continued to its question, and only then answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.context import Context
from agent.runner import (
    RunResult,
    chat_model,
    memory_checkpointer,
    resume_run,
    sqlite_checkpointer,
    start_run,
)
from agent.state import Approval
from tests.counting_executor import CountingExecutor, calls_per_key
from tests.processes import (
    DIMENSIONS,
    FAST,
    answer,
    counted_context,
    crash_cycle,
    join_all,
    start,
)
from tests.test_approval import payops, record_of
from tests.test_graph import ledger_rows
from tools.approvals import APPROVALS_FILE, SqliteApprovalStore
from tools.config import PayopsConfig
from tools.generate import GenerateOptions, generate_scenario
from tools.guardrails import GuardConfig
from tools.learning import LEARNING_FILE, LearningStore

ROWS = 3_000
SEED = 1


@pytest.fixture(scope="module")
def fraud(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fraud-rule misfire: its rollback waits for a human."""
    out = tmp_path_factory.mktemp("fraud")
    opts = GenerateOptions(file_format="csv")
    return generate_scenario(out, "fraud_rule_misfire", SEED, ROWS, options=opts)


def paused(scenario: Path, home: Path, config: PayopsConfig | None = None) -> RunResult:
    """Run `scenario` until it waits for approval."""
    ctx = Context(config=config or PayopsConfig(), model=chat_model(None), state_dir=home)
    with sqlite_checkpointer(home) as saver:
        result = start_run(scenario, ctx, saver, dimensions=DIMENSIONS)
    assert result.record.verdict == "needs_approval", result.record.violations
    return result


def pause(scenario: Path, home: Path) -> str:
    """Run `scenario` until it waits for approval; its thread id."""
    return paused(scenario, home).thread_id


def learned(home: Path) -> list[dict[str, Any]]:
    """Every outcome in the learning store."""
    if not (home / LEARNING_FILE).exists():
        return []
    export = home / "export.json"
    with LearningStore(home / LEARNING_FILE) as store:
        store.export(export)
    rows: list[dict[str, Any]] = json.loads(export.read_text(encoding="utf-8"))
    return rows


# ---------------------------------------------------------------------------------------
# Approve against reject.


@pytest.mark.parametrize("race", range(3))
def test_approve_racing_reject_has_exactly_one_winner(
    fraud: Path, tmp_path: Path, race: int
) -> None:
    home = tmp_path / "home"
    thread = pause(fraud, home)
    barrier, results = FAST.Barrier(2), FAST.Queue()
    procs = [
        start(answer, str(home), thread, approved, 0.0, barrier, results)
        for approved in (True, False)
    ]
    assert join_all(procs) == [0, 0]
    answers = sorted((results.get(timeout=10) for _ in procs), key=lambda a: a[1])
    (lost_approved, _, message), (won_approved, _, verdict) = answers
    assert [a[1] for a in answers] == ["lost", "won"], answers
    first = "approved by alice" if won_approved else "rejected by bob"
    assert f"already {first}" in message and "\n" not in message
    assert lost_approved != won_approved
    assert verdict == ("executed" if won_approved else "blocked")
    # One outcome learned, the winner's; the action ran only if approve won.
    outcomes = learned(home)
    assert [o["verdict"] for o in outcomes] == [verdict]
    executed = [row for row in ledger_rows(home) if row[3] == "executed"]
    assert len(executed) == (1 if won_approved else 0)
    assert sum(calls_per_key(home / "executor").values()) == len(executed)


def test_the_loser_of_an_answer_gets_one_line_and_exit_2(fraud: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    thread = pause(fraud, home)
    with sqlite_checkpointer(home) as saver:
        ctx = Context(state_dir=home)
        resume_run(thread, Approval(approved=True, by="alice"), ctx, saver)
    rejected = payops(home, "reject", thread, "--reason", "too risky")
    assert rejected.returncode == 2
    message = rejected.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in rejected.stderr
    assert f"run {thread} was already approved by alice" in message
    assert "cannot be rejected now" in message
    assert [o["verdict"] for o in learned(home)] == ["executed"]


# ---------------------------------------------------------------------------------------
# Guard at approval.


def test_the_kill_switch_engaged_after_the_pause_blocks_the_approval(
    fraud: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    as_json, readable = pause(fraud, home), pause(fraud, home)

    env = {"PAYOPS_KILL_SWITCH": "1"}
    done = payops(home, "approve", as_json, "--json", env=env)
    assert done.returncode == 0, done.stderr
    record = record_of(done.stdout)
    assert record.verdict == "blocked" and record.outcome is None
    assert "kill_switch" in {v.rule for v in record.violations}

    shown = payops(home, "approve", readable, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "blocked" in shown.stdout and "kill_switch: kill switch engaged" in shown.stdout
    assert ledger_rows(home) == []  # nothing claimed, nothing executed
    assert [o["verdict"] for o in learned(home)] == ["blocked", "blocked"]


def test_a_target_marked_unhealthy_after_the_pause_blocks_the_approval(tmp_path: Path) -> None:
    # Every shift needs a human here (no share of volume is small enough), so the
    # outage's shift pauses; then the processor it would move traffic to goes unhealthy.
    scenario = generate_scenario(
        tmp_path / "s", "processor_outage", SEED, ROWS, options=GenerateOptions(file_format="csv")
    )
    config_file = tmp_path / "payops.toml"
    config_file.write_text("[guard]\nmax_affected_share = 0.0\n", encoding="utf-8")
    config = PayopsConfig(guard=GuardConfig(max_affected_share=0.0))
    home = tmp_path / "home"
    pending = paused(scenario, home, config)
    decision = pending.record.decision
    assert decision is not None and decision.action == "shift_traffic"

    spec = json.loads((scenario / "scenario.json").read_text(encoding="utf-8"))
    spec["context"]["processors"][decision.params["to_processor"]]["healthy"] = False
    (scenario / "scenario.json").write_text(json.dumps(spec), encoding="utf-8")

    env = {"PAYOPS_CONFIG": str(config_file)}
    done = payops(home, "approve", pending.thread_id, "--json", env=env)
    assert done.returncode == 0, done.stderr
    record = record_of(done.stdout)
    assert record.verdict == "blocked"
    assert "target_healthy" in {v.rule for v in record.violations}
    assert ledger_rows(home) == []


def test_a_long_lived_process_sees_the_health_of_now_at_approval(tmp_path: Path) -> None:
    # One process pauses and approves (as a chat session would): its data stay cached, but
    # guard reads the scenario's context from disk again when the action is claimed.
    scenario = generate_scenario(
        tmp_path / "s", "processor_outage", SEED, ROWS, options=GenerateOptions(file_format="csv")
    )
    config = PayopsConfig(guard=GuardConfig(max_affected_share=0.0))
    home = tmp_path / "home"
    ctx = Context(config=config, state_dir=home, executor=CountingExecutor(home / "executor"))
    saver = memory_checkpointer()
    pending = start_run(scenario, ctx, saver, dimensions=DIMENSIONS)
    decision = pending.record.decision
    assert pending.record.verdict == "needs_approval" and decision is not None
    spec = json.loads((scenario / "scenario.json").read_text(encoding="utf-8"))
    spec["context"]["processors"][decision.params["to_processor"]]["healthy"] = False
    (scenario / "scenario.json").write_text(json.dumps(spec), encoding="utf-8")

    done = resume_run(pending.thread_id, Approval(approved=True), ctx, saver)
    assert done.record.verdict == "blocked"
    assert "target_healthy" in {v.rule for v in done.record.violations}
    assert calls_per_key(home / "executor") == {}


# ---------------------------------------------------------------------------------------
# Dead threads.


def _threads(home: Path) -> set[str]:
    with sqlite_checkpointer(home) as saver:
        return {c.config["configurable"]["thread_id"] for c in saver.list(None)}


def test_a_run_that_fails_before_acting_leaves_no_thread(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "txn_id,ts,merchant_id,processor,payment_method,currency,amount_minor,status,latency_ms\n"
        "t1,2026-03-01T10:00:00Z,m1,acq_a,card,EUR,100,aproved,120\n",
        encoding="utf-8",
    )
    home = tmp_path / "home"
    failed = payops(home, "run", str(bad))
    assert failed.returncode == 2 and "aproved" in failed.stderr
    assert _threads(home) == set()


class FailingOnce(CountingExecutor):
    """Its first call fails after applying nothing (a timeout before the request left)."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Fail the first call, work afterwards."""
        marker = self.folder / "failed-once"
        if not marker.exists():
            marker.touch()
            raise ConnectionError("routing API unreachable")
        return super().execute(*args, **kwargs)


def test_a_run_that_fails_inside_act_stays_and_approve_finishes_it(
    fraud: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    thread = pause(fraud, home)
    ctx = Context(state_dir=home, executor=FailingOnce(home / "executor"))
    with sqlite_checkpointer(home) as saver, pytest.raises(ConnectionError):
        resume_run(thread, Approval(approved=True, by="alice"), ctx, saver)
    assert thread in _threads(home)
    ctx = Context(state_dir=home, executor=CountingExecutor(home / "executor"))
    with sqlite_checkpointer(home) as saver:
        done = resume_run(thread, Approval(approved=True, by="alice"), ctx, saver)
    assert done.record.verdict == "executed"
    assert [o["verdict"] for o in learned(home)] == ["executed"]


def test_an_answer_is_never_applied_to_a_question_nobody_saw(fraud: Path, tmp_path: Path) -> None:
    # Killed in the middle of the run, before it asked: approving it first lets the cycle
    # reach its question, and shows it; only the next answer is applied.
    home = tmp_path / "home"
    child = start(
        crash_cycle, str(home), str(fraud), "killed-early", "ckpt:put:after:2", DIMENSIONS
    )
    assert join_all([child]) == [-9]
    ctx = counted_context(str(home))
    with sqlite_checkpointer(home) as saver:
        first = resume_run("killed-early", Approval(approved=True, by="alice"), ctx, saver)
    assert first.record.verdict == "needs_approval" and first.pending is not None
    assert calls_per_key(home / "executor") == {}
    with SqliteApprovalStore(home / APPROVALS_FILE) as approvals:
        assert [r.thread_id for r in approvals.pending()] == ["killed-early"]
    with sqlite_checkpointer(home) as saver:
        second = resume_run("killed-early", Approval(approved=True, by="alice"), ctx, saver)
    assert second.record.verdict == "executed"
    with SqliteApprovalStore(home / APPROVALS_FILE) as approvals:
        assert approvals.pending() == []
        answered = approvals.get("killed-early")
    assert answered is not None and answered.status == "approved"
