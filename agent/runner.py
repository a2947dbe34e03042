"""Running the loop: start a cycle, resume it after a human's answer, turn it into a record.

The CLI, `payops eval` and the tests all go through these functions, so a run means the
same thing everywhere.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command, StateSnapshot

from agent.context import CHECKPOINT_FILE, Context
from agent.graph import compile_graph
from agent.models import load_chat_model
from agent.state import AgentState, Approval, ApprovalRequest
from tools import sql
from tools.approvals import ApprovalRecord
from tools.config import PayopsConfig
from tools.contract import RunRecord, iso
from tools.crashpoints import crash_point
from tools.ledger import InProgressError
from tools.sql import SchemaError, StoreBusyError

log = logging.getLogger(__name__)

# Model specs that mean "no model: the deterministic reasoner decides alone".
NO_MODEL = frozenset({"none", "deterministic"})

UpdateHandler = Callable[[str, dict[str, Any]], None]


class RunError(Exception):
    """A run that cannot proceed for a reason the user can fix (unknown thread, ...)."""


@dataclass
class RunResult:
    """A finished or paused cycle."""

    thread_id: str
    state: AgentState
    pending: ApprovalRequest | None
    record: RunRecord


def chat_model(spec: str | None) -> BaseChatModel | None:
    """The chat model for `--model` (default: the offline stub; `none`: no model)."""
    if spec is not None and spec.strip().lower() in NO_MODEL:
        return None
    return load_chat_model(spec)


def checkpoint_serde() -> JsonPlusSerializer:
    """The checkpoint serializer, allowed to rebuild exactly the state's own models."""
    from agent.model_reasoner import IncidentHypothesis, RemedyCandidate
    from tools.contract import (
        ApprovalReason,
        Decision,
        Outcome,
        RefusedRemedy,
        TimeWindow,
        Violation,
    )
    from tools.guardrails import GuardVerdict
    from tools.observe import Observation

    # TimeWindow: a chat thread keeps its windows (agent/chat/state.py).
    allowed: list[type] = [
        Observation, IncidentHypothesis, RemedyCandidate, Decision, Outcome, Violation,
        GuardVerdict, Approval, AgentState, TimeWindow, ApprovalReason, RefusedRemedy,
    ]  # fmt: skip
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


def memory_checkpointer() -> BaseCheckpointSaver[Any]:
    """In-process checkpoints (eval and tests): interrupts work, nothing touches disk."""
    return InMemorySaver(serde=checkpoint_serde())


# Version 1: LangGraph's SqliteSaver.setup() has run on the file (its DDL is its own).
CHECKPOINT_SCHEMA = sql.Schema("langgraph_checkpoints", ((),))


@contextmanager
def sqlite_checkpointer(state_dir: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """Durable checkpoints in the state directory, so approvals survive the process.

    The file is opened like every state database (WAL, busy timeout, retries), and
    LangGraph's tables are created once, behind the version table, however many processes
    open a new state directory at the same moment.
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = state_dir / CHECKPOINT_FILE
    # Python's implicit transactions: SqliteSaver commits after each of its writes.
    conn = sql.sqlite_connect(path, durable=True, autocommit=False)
    try:
        saver = SqliteSaver(conn, serde=checkpoint_serde())
        current = sql.sqlite_retry(
            path, lambda: sql.schema_version(conn, CHECKPOINT_SCHEMA.component)
        )
        if current < CHECKPOINT_SCHEMA.version:
            sql.sqlite_retry(path, saver.setup)
            sql.ensure_schema(conn, path, CHECKPOINT_SCHEMA)
        saver.is_setup = True  # created once above; never again per connection
        yield saver
    finally:
        conn.close()


def to_record(state: AgentState, pending: ApprovalRequest | None, latency_ms: float) -> RunRecord:
    """The CONTRACT.md section 3 record of a cycle."""
    obs = state.observation
    verdict = "needs_approval" if pending is not None else (state.verdict or "no_action")
    return RunRecord(
        scenario_id=state.scenario_id,
        anomalous=bool(obs and obs.anomalous),
        anomalies=obs.anomalies if obs else [],
        root_cause=obs.root_cause if obs else [],
        incident_kind=state.incident_kind,
        decision=state.decision,
        verdict=verdict,
        violations=state.violations,
        outcome=state.outcome if verdict == "executed" else None,
        latency_ms=round(latency_ms, 1),
        hypotheses=[h.model_dump(mode="json") for h in state.hypotheses],
        rationale=state.decision.rationale if state.decision else "",
        escalations=state.guard.escalations if state.guard is not None else [],
        refused=state.refused,
    )


def _drive(
    graph: Any,
    payload: Any,
    config: RunnableConfig,
    ctx: Context,
    on_update: UpdateHandler | None,
) -> tuple[AgentState, ApprovalRequest | None]:
    try:
        for chunk in graph.stream(
            payload, config, context=ctx, stream_mode="updates", durability="sync"
        ):
            for node, update in chunk.items():
                if on_update is not None and not node.startswith("__"):
                    on_update(node, update or {})
    except (InProgressError, StoreBusyError, SchemaError) as exc:
        raise RunError(str(exc)) from exc
    return _state_of(graph.get_state(config))


def _state_of(snapshot: StateSnapshot) -> tuple[AgentState, ApprovalRequest | None]:
    """The cycle's state, and its pending approval request if it is paused."""
    state = AgentState.model_validate(snapshot.values)
    pending = None
    if snapshot.interrupts:
        pending = ApprovalRequest.model_validate(snapshot.interrupts[0].value)
    return state, pending


def _unfinished(snapshot: StateSnapshot) -> bool:
    # `next` alone misses a task whose writes were saved just before a crash: it has no
    # `next`, but its task is still pending and the thread resumes from it.
    return bool(snapshot.next or snapshot.tasks)


def _past_guard(snapshot: StateSnapshot) -> bool:
    # A thread that reached act or learn holds (or may hold) an executed action or an
    # answered approval: it must stay finishable.
    names = {*snapshot.next, *(task.name for task in snapshot.tasks)}
    return bool(names & {"act", "learn"}) or snapshot.values.get("idempotency_key") is not None


def _keep_if_finishable(graph: Any, config: RunnableConfig) -> bool:
    """After a failed run: keep it if it got past guard (True), else delete its checkpoints.

    A run that failed before acting has nothing to finish; one in act or learn may hold an
    executed action or an answered approval, and `resume_run` finishes it.
    """
    thread_id = str(config.get("configurable", {}).get("thread_id", ""))
    try:
        snapshot = graph.get_state(config)
        if snapshot.values and _past_guard(snapshot):
            return True
        graph.checkpointer.delete_thread(thread_id)
    except Exception:  # best effort: the original error is what the caller must see
        log.warning("could not discard the checkpoints of failed run %s", thread_id)
    return False


def _record_request(
    ctx: Context, thread_id: str, state: AgentState, request: ApprovalRequest
) -> None:
    crash_point("run:paused")
    with ctx.approvals() as approvals:
        approvals.request(thread_id, state.scenario_id, request.model_dump(mode="json"))


def _result(
    thread_id: str, state: AgentState, pending: ApprovalRequest | None, started: float
) -> RunResult:
    latency = (time.perf_counter() - started) * 1000.0
    return RunResult(thread_id, state, pending, to_record(state, pending, latency))


def start_run(
    source: Path,
    ctx: Context,
    checkpointer: BaseCheckpointSaver[Any],
    *,
    lenient: bool = False,
    dimensions: list[str] | None = None,
    thread_id: str | None = None,
    on_update: UpdateHandler | None = None,
) -> RunResult:
    """Run one cycle on `source` until it finishes or waits for a human.

    A pause is recorded in the approvals store. A run that fails before acting leaves no
    checkpoints behind; one that fails in act or learn stays, for `resume_run` to finish.
    """
    thread_id = thread_id or f"run-{uuid.uuid4().hex[:12]}"
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    graph = compile_graph(checkpointer)
    started = time.perf_counter()
    initial = AgentState(source=str(source), lenient=lenient, dimensions=dimensions)
    try:
        state, pending = _drive(graph, initial, config, ctx, on_update)
    except RunError as exc:
        if _keep_if_finishable(graph, config):
            raise RunError(f"{exc}; `payops approve {thread_id}` finishes the run") from exc
        raise
    except BaseException:
        _keep_if_finishable(graph, config)
        raise
    if pending is not None:
        _record_request(ctx, thread_id, state, pending)
    return _result(thread_id, state, pending, started)


def saved_state(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> AgentState | None:
    """The last checkpointed state of a loop run (None for an unknown thread); read-only."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    values = compile_graph(checkpointer).get_state(config).values
    return AgentState.model_validate(values) if values else None


def resume_run(
    thread_id: str,
    approval: Approval,
    ctx: Context,
    checkpointer: BaseCheckpointSaver[Any],
    *,
    on_update: UpdateHandler | None = None,
) -> RunResult:
    """Answer a pending approval and finish the cycle (from any process).

    The answer is one compare-and-set on the approvals store: of two racing answers one
    wins; the other raises RunError naming the first. The graph then resumes with the
    answer that won, and act checks guard again before executing. The same answer given
    again finishes a cycle whose process died after the answer was recorded, wherever it
    stopped (killed inside act, or between two checkpoint writes). A cycle that died before
    it asked for approval is continued to its pause (or its end) without applying the
    answer: nobody has seen its request yet.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    graph = compile_graph(checkpointer)
    snapshot = graph.get_state(config)
    if not snapshot.values:
        raise RunError(f"no run with thread id {thread_id!r} in {ctx.state_dir}")
    state = AgentState.model_validate(snapshot.values)
    started = time.perf_counter()
    request = snapshot.interrupts[0].value if snapshot.interrupts else None
    with ctx.approvals() as approvals:
        record = approvals.get(thread_id)
        if request is None and record is None:
            if not _unfinished(snapshot):
                raise RunError(
                    f"run {thread_id} has no pending approval "
                    f"(its verdict is {state.verdict or 'unknown'})"
                )
            answered = None  # stopped before asking: continue it to its question
        else:
            answer = approvals.answer(
                thread_id,
                approved=approval.approved,
                by=approval.by,
                reason=approval.reason,
                scenario_id=state.scenario_id,
                request=request if request is not None else record.request if record else {},
            )
            _check_answer(thread_id, approval, answer.won, answer.record, snapshot, state)
            answered = _approval_of(answer.record)
    crash_point("approval:answered")
    state, pending = _finish(graph, config, ctx, answered, on_update)
    if pending is not None:
        _record_request(ctx, thread_id, state, pending)
    return _result(thread_id, state, pending, started)


def _approval_of(record: ApprovalRecord) -> Approval:
    return Approval(
        approved=record.status == "approved",
        by=record.answered_by or "operator",
        reason=record.reason or "",
    )


def _check_answer(
    thread_id: str,
    approval: Approval,
    won: bool,
    record: ApprovalRecord,
    snapshot: StateSnapshot,
    state: AgentState,
) -> None:
    """Raise RunError unless this answer may finish the thread (it won, or repeats it)."""
    if won:
        return
    first = _approval_of(record)
    word = "approved" if first.approved else "rejected"
    when = iso(record.answered_at) if record.answered_at else "an earlier time"
    if first.approved != approval.approved:
        other = "approved" if approval.approved else "rejected"
        finish = ""
        if _unfinished(snapshot):
            command = "approve" if first.approved else "reject"
            finish = f"; `payops {command} {thread_id}` finishes it"
        raise RunError(
            f"run {thread_id} was already {word} by {first.by} at {when}; "
            f"it cannot be {other} now{finish}"
        )
    if not _unfinished(snapshot):
        raise RunError(
            f"run {thread_id} has no pending approval: it was already {word} by {first.by} "
            f"at {when} (its verdict is {state.verdict or 'unknown'})"
        )


def _finish(
    graph: Any,
    config: RunnableConfig,
    ctx: Context,
    answer: Approval | None,
    on_update: UpdateHandler | None,
) -> tuple[AgentState, ApprovalRequest | None]:
    """Drive the thread until it ends, or pauses with no answer to give it."""
    payload: Any = None
    # Each pass ends the cycle or passes at least one node; the bound is a backstop.
    for _ in range(16):
        snapshot = graph.get_state(config)
        if snapshot.interrupts:
            if answer is None:
                break
            payload = Command(resume=answer.model_dump(mode="json"))
        elif _unfinished(snapshot):
            payload = None
        else:
            break
        _drive(graph, payload, config, ctx, on_update)
    return _state_of(graph.get_state(config))


def run_scenario(
    path: Path,
    *,
    model: str | None = None,
    state_dir: Path | None = None,
    config: PayopsConfig | None = None,
) -> RunRecord:
    """One scenario through the whole graph, approvals not granted (what `payops eval` runs)."""
    ctx = Context(config=config or PayopsConfig(), model=chat_model(model))
    if state_dir is not None:
        ctx.state_dir = state_dir
    started = time.perf_counter()
    result = start_run(path, ctx, memory_checkpointer(), thread_id=f"eval-{path.name}")
    record = result.record
    record.latency_ms = round((time.perf_counter() - started) * 1000.0, 1)
    return record
