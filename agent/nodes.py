"""The graph's nodes: each reads the state, calls pure tools, returns a state update.

Nothing clever lives here; detection, reasoning, policy and simulation are in `tools/`
and `agent/reasoning.py`. Effects happen only in `act` (behind the ledger) and `learn`.
"""

from __future__ import annotations

from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent import reasoning
from agent.acting import Proposal, act, check, scenario_context_of
from agent.context import Context, scenario_id_of
from agent.model_reasoner import decide_with_model
from agent.state import AgentState, Approval, ApprovalRequest, ApprovalRoute, GuardRoute
from tools.contract import (
    Decision,
    Segment,
    Verdict,
    Violation,
)
from tools.crashpoints import crash_point
from tools.data import Dataset
from tools.learning import LearnedOutcome
from tools.observe import Observation, observe
from tools.routes import SegmentSnapshot


def _dataset(state: AgentState, ctx: Context) -> Dataset:
    return ctx.dataset(state.source, state.lenient, state.dimensions)


def _decision(state: AgentState) -> Decision:
    if state.decision is None:  # the graph's edges make this unreachable
        raise RuntimeError("reason has not run")
    return state.decision


def _observation(state: AgentState) -> Observation:
    if state.observation is None:  # the graph's edges make this unreachable
        raise RuntimeError("observe has not run")
    return state.observation


def _snapshotter(ctx: Context, ds: Dataset, obs: Observation) -> reasoning.Snapshotter:
    def get(segment: Segment) -> SegmentSnapshot:
        return ctx.snapshot(ds, obs.baseline, obs.current, segment)

    return get


def _thread_id() -> str:
    return str(get_config().get("configurable", {}).get("thread_id", ""))


def _proposal(state: AgentState, ctx: Context) -> Proposal:
    return Proposal(
        decision=_decision(state),
        dataset=_dataset(state, ctx),
        observation=_observation(state),
        thread_id=_thread_id(),
    )


def observe_node(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Load the data, measure every segment, flag anomalies and localize the root cause."""
    ctx = runtime.context
    ds = _dataset(state, ctx)
    result = observe(ds, ctx.config.observe, baseline=ctx.baseline, current=ctx.current)
    return {"observation": result, "scenario_id": scenario_id_of(ds)}


def reason_node(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Classify the incident and choose a remedy (a model may choose among the candidates)."""
    ctx = runtime.context
    ds = _dataset(state, ctx)
    obs = _observation(state)
    scenario = scenario_context_of(ds)
    with ctx.learning_store() as store:
        learning = store.learning_context()
    found = reasoning.reason(obs, scenario, _snapshotter(ctx, ds, obs), learning, ctx.limits)
    decision = found.decision
    if ctx.model is not None:
        evidence = reasoning.evidence_for_model(state.scenario_id, obs, scenario, found)
        decision = decide_with_model(
            ctx.model, evidence, decision, config=get_config(), timeout_s=ctx.config.model.timeout_s
        )
    return {
        "hypotheses": found.hypotheses,
        "incident_kind": found.incident_kind,
        "candidates": found.candidates,
        "refused": found.refused,
        "decision": decision,
    }


def guard_node(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the decision against every policy rule and the ledger; no model is involved."""
    verdict = check(runtime.context, _proposal(state, runtime.context))
    return {"guard": verdict, "violations": verdict.violations}


def route_after_guard(state: AgentState) -> GuardRoute:
    """Approved -> act; needs a human -> approve; blocked or nothing to do -> learn."""
    guard = state.guard
    if state.decision is None or guard is None or state.decision.action == "no_action":
        return "learn"
    if guard.status == "blocked":
        return "learn"
    if guard.status == "needs_approval":
        return "approve"
    return "act"


def approve_node(state: AgentState) -> dict[str, Any]:
    """Pause for a human. No side effects here: the node re-runs from its top on resume."""
    decision = state.decision
    guard = state.guard
    if decision is None or guard is None:
        raise RuntimeError("guard has not run")
    request = ApprovalRequest(
        scenario_id=state.scenario_id,
        decision=decision,
        risk=guard.risk,
        reasons=guard.reasons_for_approval,
        incident_kind=state.incident_kind,
        root_cause=_observation(state).root_cause,
    )
    answer = interrupt(request.model_dump(mode="json"))
    return {"approval": Approval.model_validate(answer)}


def route_after_approval(state: AgentState) -> ApprovalRoute:
    """Act only on an explicit approval."""
    return "act" if state.approval is not None and state.approval.approved else "learn"


def act_node(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Execute the decision exactly once, if guard still allows it (`agent.acting.act`)."""
    result = act(runtime.context, _proposal(state, runtime.context), state.approval)
    return {
        "idempotency_key": result.idempotency_key,
        "outcome": result.outcome,
        "already_executed": result.already_executed,
        "verdict": result.verdict,
        "violations": [*state.violations, *result.violations],
    }


def _final_verdict(state: AgentState) -> tuple[Verdict, list[Violation]]:
    violations = list(state.violations)
    if state.verdict == "executed":
        return "executed", violations
    if state.decision is None or state.decision.action == "no_action":
        return "no_action", violations
    if state.approval is not None and not state.approval.approved:
        detail = f"rejected by {state.approval.by}: {state.approval.reason or 'no reason given'}"
        return "blocked", [*violations, Violation(rule="human_rejected", detail=detail)]
    return "blocked", violations


def learn_node(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Record the cycle's outcome (blocked and no-action cycles too) in the learning store."""
    ctx = runtime.context
    verdict, violations = _final_verdict(state)
    decision = state.decision
    if decision is not None:
        learned = LearnedOutcome.of(
            decision,
            verdict,
            state.outcome,
            scenario_id=state.scenario_id,
            thread_id=_thread_id(),
            incident_kind=state.incident_kind,
            # One row per execution (its ledger key), else one per cycle: a crashed cycle
            # finished later, or answered twice, is not learned twice.
            idempotency_key=(
                state.idempotency_key if verdict == "executed" else f"cycle:{_thread_id()}"
            ),
        )
        with ctx.learning_store() as store:
            store.record(learned)
        crash_point("learn:recorded")
    return {"verdict": verdict, "violations": violations, "learned": True}
