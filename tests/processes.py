"""Child processes for concurrency and crash tests: how they start, and what they run.

A fork server imports this module (and so payops) once; each child is forked from it, so
it starts in milliseconds instead of the seconds a fresh interpreter needs to import
LangGraph and DuckDB, and it inherits no threads or connections from the pytest process.
The children's targets live here, so a child imports nothing more.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.runner import RunError, resume_run, sqlite_checkpointer, start_run
from agent.state import Approval
from tests.counting_executor import CountingExecutor
from tools.approvals import APPROVALS_FILE, SqliteApprovalStore
from tools.crashpoints import CRASH_ENV
from tools.executor import JOURNAL_FILE, SimulatorJournal
from tools.learning import LEARNING_FILE, LearningStore
from tools.ledger import LEDGER_FILE, ActionLedger

FAST: ForkServerContext = multiprocessing.get_context("forkserver")
FAST.set_forkserver_preload(["tests.processes"])

# Generous: the machine may be loaded; nothing in the tests waits for it to elapse.
TIMEOUT_S = 120.0


def start(target: Callable[..., Any], *args: Any) -> BaseProcess:
    """Start `target(*args)` in a child process."""
    proc = FAST.Process(target=target, args=args)
    proc.start()
    return proc


def join_all(procs: Sequence[BaseProcess], timeout_s: float = TIMEOUT_S) -> list[int | None]:
    """Wait for every process (up to a shared deadline); their exit codes."""
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        proc.join(max(deadline - time.monotonic(), 0.0))
    stuck = [p.pid for p in procs if p.is_alive()]
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join(10)
    assert not stuck, f"processes {stuck} did not finish within {timeout_s:.0f} s"
    return [p.exitcode for p in procs]


# ---------------------------------------------------------------------------------------
# Targets. Each waits at `barrier` so that all start their contended step together, and
# puts what it saw on `results`.


def counted_context(home: str, stall_s: float = 0.0) -> Context:
    """A context on `home` whose executor counts calls in `home/executor`."""
    return Context(
        state_dir=Path(home), executor=CountingExecutor(Path(home) / "executor", stall_s=stall_s)
    )


# Three dimensions keep each cycle short; the generated incidents are found on them.
DIMENSIONS = ["merchant_id", "processor", "issuer_country"]


def run_cycle(home: str, scenario: str, stall_s: float, barrier: Any, results: Any) -> None:
    """Run `scenario` once; puts the verdict."""
    ctx = counted_context(home, stall_s)
    barrier.wait()
    with sqlite_checkpointer(ctx.state_dir) as saver:
        result = start_run(Path(scenario), ctx, saver, dimensions=DIMENSIONS)
    results.put(result.record.verdict)


def answer(
    home: str, thread: str, approved: bool, stall_s: float, barrier: Any, results: Any
) -> None:
    """Approve (as alice) or reject (as bob) `thread`; puts (approved, won|lost, verdict|error)."""
    ctx = counted_context(home, stall_s)
    approval = Approval(approved=approved, by="alice" if approved else "bob", reason="race")
    barrier.wait()
    try:
        with sqlite_checkpointer(ctx.state_dir) as saver:
            result = resume_run(thread, approval, ctx, saver)
        results.put((approved, "won", result.record.verdict))
    except RunError as exc:
        results.put((approved, "lost", str(exc)))


def open_state(home: str, barrier: Any, results: Any) -> None:
    """Open every state database of `home` (the first open creates it); puts "ok" or the error."""
    state = Path(home)
    barrier.wait()
    try:
        with sqlite_checkpointer(state) as saver:
            saver.list(None)
        ActionLedger(state / LEDGER_FILE).close()
        LearningStore(state / LEARNING_FILE).close()
        SqliteApprovalStore(state / APPROVALS_FILE).close()
        SimulatorJournal(state / JOURNAL_FILE).close()
        results.put("ok")
    except Exception as exc:  # reported by the test, whatever it is
        results.put(repr(exc))


def crash_at(point: str) -> None:
    """Arrange for this process to be killed with SIGKILL at `point`.

    `ckpt:<put|put_writes>:<before|after>:<n>` is the n-th write of that kind to the
    checkpoint database (LangGraph's SqliteSaver, patched in this child only); anything
    else is a `tools.crashpoints` point, armed through its environment variable.
    """
    if not point.startswith("ckpt:"):
        os.environ[CRASH_ENV] = point
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    _, method, when, nth = point.split(":")
    original = getattr(SqliteSaver, method)
    seen = itertools.count(1)

    def write(self: SqliteSaver, *args: Any, **kwargs: Any) -> Any:
        # Writes run on LangGraph's background threads: number each call once, up front.
        n = next(seen)
        if n == int(nth) and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(self, *args, **kwargs)
        if n == int(nth) and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(SqliteSaver, method, write)


def crash_cycle(home: str, scenario: str, thread: str, point: str, dimensions: list[str]) -> None:
    """Run (scenario given) or approve (scenario "") `thread`, killed at `point`."""
    crash_at(point)
    ctx = counted_context(home)
    with sqlite_checkpointer(ctx.state_dir) as saver:
        if scenario:
            start_run(Path(scenario), ctx, saver, thread_id=thread, dimensions=dimensions)
        else:
            resume_run(thread, Approval(approved=True, by="alice"), ctx, saver)
