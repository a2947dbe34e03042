"""Running the loop: start a cycle, resume it after a human's answer, turn it into a record.

The CLI, `payops eval` and the tests all go through these functions, so a run means the
same thing everywhere.
"""

from __future__ import annotations

import sqlite3
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
from langgraph.types import Command

from agent.context import CHECKPOINT_FILE, Context
from agent.graph import compile_graph
from agent.models import load_chat_model
from agent.state import AgentState, Approval, ApprovalRequest
from tools.config import PayopsConfig
from tools.contract import RunRecord

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


@contextmanager
def sqlite_checkpointer(state_dir: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """Durable checkpoints in the state directory, so approvals survive the process."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(state_dir / CHECKPOINT_FILE, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        yield SqliteSaver(conn, serde=checkpoint_serde())
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
    for chunk in graph.stream(
        payload, config, context=ctx, stream_mode="updates", durability="sync"
    ):
        for node, update in chunk.items():
            if on_update is not None and node != "__interrupt__":
                on_update(node, update or {})
    snapshot = graph.get_state(config)
    state = AgentState.model_validate(snapshot.values)
    pending = None
    if snapshot.interrupts:
        pending = ApprovalRequest.model_validate(snapshot.interrupts[0].value)
    return state, pending


def start_run(
    source: Path,
    ctx: Context,
    checkpointer: BaseCheckpointSaver[Any],
    *,
    seed: int = 0,
    lenient: bool = False,
    dimensions: list[str] | None = None,
    thread_id: str | None = None,
    on_update: UpdateHandler | None = None,
) -> RunResult:
    """Run one cycle on `source` until it finishes or waits for a human."""
    thread_id = thread_id or f"run-{uuid.uuid4().hex[:12]}"
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    graph = compile_graph(checkpointer)
    started = time.perf_counter()
    initial = AgentState(source=str(source), seed=seed, lenient=lenient, dimensions=dimensions)
    state, pending = _drive(graph, initial, config, ctx, on_update)
    latency = (time.perf_counter() - started) * 1000.0
    return RunResult(thread_id, state, pending, to_record(state, pending, latency))


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

    Answering again with the same answer finishes a cycle whose process died after the
    answer was recorded (e.g. killed inside `act`); any other repeat is a RunError.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    graph = compile_graph(checkpointer)
    snapshot = graph.get_state(config)
    if not snapshot.values:
        raise RunError(f"no run with thread id {thread_id!r} in {ctx.state_dir}")
    payload: Any = Command(resume=approval.model_dump(mode="json"))
    if not snapshot.interrupts:
        state = AgentState.model_validate(snapshot.values)
        answered = state.approval
        if snapshot.next and answered is not None and answered.approved == approval.approved:
            # Answered, but the process died before the cycle finished (e.g. killed in act):
            # continue from the last checkpoint; the ledger keeps the action exactly-once.
            payload = None
        elif snapshot.next and answered is not None:
            word, command = ("approved", "approve") if answered.approved else ("rejected", "reject")
            raise RunError(
                f"run {thread_id} was already {word} by {answered.by} and stopped before "
                f"finishing; `payops {command} {thread_id}` finishes it"
            )
        else:
            # Sending input to a finished thread would restart it; an answered approval is final.
            raise RunError(
                f"run {thread_id} has no pending approval "
                f"(its verdict is {state.verdict or 'unknown'})"
            )
    started = time.perf_counter()
    state, pending = _drive(graph, payload, config, ctx, on_update)
    latency = (time.perf_counter() - started) * 1000.0
    return RunResult(thread_id, state, pending, to_record(state, pending, latency))


def run_scenario(
    path: Path,
    *,
    model: str | None = None,
    seed: int = 0,
    state_dir: Path | None = None,
    config: PayopsConfig | None = None,
) -> RunRecord:
    """One scenario through the whole graph, approvals not granted (what `payops eval` runs)."""
    ctx = Context(config=config or PayopsConfig(), model=chat_model(model))
    if state_dir is not None:
        ctx.state_dir = state_dir
    started = time.perf_counter()
    result = start_run(path, ctx, memory_checkpointer(), seed=seed, thread_id=f"eval-{path.name}")
    record = result.record
    record.latency_ms = round((time.perf_counter() - started) * 1000.0, 1)
    return record
