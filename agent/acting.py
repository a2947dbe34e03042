"""The one path from a decision to the executor: guard against the current state, then
execute exactly once.

The loop's guard and act nodes call `check` and `act`; so does anything else that executes
a decision (a chat graph executing an approved proposal), so every execution passes the
same policy and the same ledger. Build a `Proposal` from what observe found and the
decision, then:

    verdict = check(ctx, proposal)            # guard, counting what the ledger holds
    result = act(ctx, proposal, approval)     # guard again, inside the claim; execute once

`act` never executes a decision guard blocks *now*: the kill switch, processor health and
pacing are read again when the action is claimed (after a human's approval that can be
hours later), and the pacing check runs in the claim's own transaction, so two processes
cannot both take the last slot of a segment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from agent import reasoning
from agent.context import Context, scenario_id_of
from agent.state import Approval
from tools.actions import NO_ACTION
from tools.contract import Decision, Outcome, ScenarioContext, Violation
from tools.data import SCENARIO_FILE, Dataset, read_scenario
from tools.executor import idempotency_key
from tools.guardrails import GuardInput, GuardLimits, GuardVerdict, evaluate
from tools.guardrails.base import PastAction
from tools.guardrails.pacing import history_horizon
from tools.ledger import Admission, LedgerEntry, execute_once
from tools.observe import Observation
from tools.routes import SegmentSnapshot


def scenario_context_of(ds: Dataset) -> ScenarioContext:
    """The scenario's operational context as loaded (empty for a plain file)."""
    return ds.scenario.context if ds.scenario is not None else ScenarioContext()


@dataclass(frozen=True)
class Proposal:
    """A decision about one observed incident, with what guard and the executor need.

    `thread_id` names the cycle (or chat) that proposes it: its own earlier actions are not
    counted against it.
    """

    decision: Decision
    dataset: Dataset
    observation: Observation
    thread_id: str

    @property
    def scenario_id(self) -> str:
        """The scenario's id, or the data file's name."""
        return scenario_id_of(self.dataset)

    @property
    def context(self) -> ScenarioContext:
        """The scenario's operational context as loaded (empty for a plain file)."""
        return scenario_context_of(self.dataset)

    def context_now(self) -> ScenarioContext:
        """The scenario's context as it is on disk now (processor health may have changed
        since the data was loaded, e.g. during a pause for approval)."""
        ds = self.dataset
        if ds.scenario is None:
            return ScenarioContext()
        return read_scenario(ds.source.parent / SCENARIO_FILE).context

    @cached_property
    def idempotency_key(self) -> str:
        """The key the executor and the ledger know this action by."""
        return idempotency_key(
            self.decision, anomaly_fingerprint(self.scenario_id, self.observation)
        )


@dataclass(frozen=True)
class ActResult:
    """What `act` did.

    `verdict` is `executed` (now, earlier, or settled from an in-doubt claim) or `blocked`
    (guard refused it at the moment of acting; `violations` say why). `already_executed`:
    the outcome is an earlier execution's, nothing was sent now.
    """

    verdict: Literal["executed", "blocked"]
    idempotency_key: str
    outcome: Outcome | None
    already_executed: bool = False
    reconciled: bool = False
    violations: list[Violation] = field(default_factory=list)


def anomaly_fingerprint(scenario_id: str, obs: Observation) -> str:
    """What identifies the incident an action answers: scenario, window and root cause."""
    payload = {
        "scenario": scenario_id,
        "current": [obs.current.start.isoformat(), obs.current.end.isoformat()],
        "root_cause": sorted(json.dumps(s, sort_keys=True) for s in obs.root_cause),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def snapshot_of(ctx: Context, proposal: Proposal) -> SegmentSnapshot:
    """The decision's target segment over the observation's windows (cached per run)."""
    obs = proposal.observation
    return ctx.snapshot(
        proposal.dataset, obs.baseline, obs.current, proposal.decision.target_segment()
    )


def guard_input(
    ctx: Context,
    proposal: Proposal,
    history: tuple[PastAction, ...] = (),
    context: ScenarioContext | None = None,
) -> GuardInput:
    """What guard reads about `proposal`, with `history` from the ledger (and `context`,
    default the one loaded with the data)."""
    context = context if context is not None else proposal.context
    return reasoning.guard_input(
        proposal.decision, snapshot_of(ctx, proposal), proposal.observation, context, history
    )


def ledger_history(
    entries: Sequence[LedgerEntry], now: datetime, *, thread_id: str, key: str | None = None
) -> tuple[PastAction, ...]:
    """Ledger entries as past actions aged at `now`, without the thread's own (nor `key`).

    An in-doubt claim counts as taken: its action may have landed.
    """
    return tuple(
        PastAction.of(e.action, e.params, e.taken_at, now, f"ledger, {e.thread_id}")
        for e in entries
        if not (thread_id and e.thread_id == thread_id) and e.idempotency_key != key
    )


def check(ctx: Context, proposal: Proposal) -> GuardVerdict:
    """Guard's verdict on `proposal` now, counting the actions the ledger holds."""
    limits = ctx.current_limits()
    history: tuple[PastAction, ...] = ()
    if proposal.decision.action != NO_ACTION and ctx.has_ledger():
        with ctx.ledger() as ledger:
            now = ledger.now()
            entries = ledger.history(now - history_horizon(limits))
        history = ledger_history(entries, now, thread_id=proposal.thread_id)
    return evaluate(guard_input(ctx, proposal, history), limits)


def _admission(
    ctx: Context,
    proposal: Proposal,
    context: ScenarioContext,
    limits: GuardLimits,
    approval: Approval | None,
) -> Admission:
    base = guard_input(ctx, proposal, context=context)
    key = proposal.idempotency_key
    human = approval is not None and approval.approved

    def admit(entries: Sequence[LedgerEntry]) -> list[Violation]:
        history = ledger_history(entries, ctx.clock(), thread_id=proposal.thread_id, key=key)
        verdict = evaluate(replace(base, ledger_history=history), limits)
        if verdict.status == "needs_approval" and not human:
            reasons = "; ".join(verdict.reasons_for_approval)
            return [Violation(rule="human_approval_required", detail=reasons)]
        return verdict.violations

    return Admission(since=ctx.clock() - history_horizon(limits), check=admit)


def act(ctx: Context, proposal: Proposal, approval: Approval | None = None) -> ActResult:
    """Execute `proposal` exactly once, if guard allows it at this moment.

    Guard runs again with the current limits (the kill switch from config or
    PAYOPS_KILL_SWITCH), the scenario's context as it is on disk now (processor health) and
    the ledger's history, inside the claim's transaction. `approval` is the human's answer when
    guard asked for one: without an approval, a decision that needs one is blocked.
    The executor gets the idempotency key; an in-doubt claim is settled by asking it.
    """
    decision = proposal.decision
    key = proposal.idempotency_key
    limits = ctx.current_limits()
    executor = ctx.action_executor()
    snap = snapshot_of(ctx, proposal)
    context = proposal.context_now()

    def execute() -> dict[str, Any]:
        return executor.execute(decision, key, snap, context).model_dump(mode="json")

    def applied() -> dict[str, Any] | None:
        found = executor.applied(key)
        return None if found is None else found.model_dump(mode="json")

    with ctx.ledger() as ledger:
        result = execute_once(
            ledger,
            key,
            thread_id=proposal.thread_id,
            scenario_id=proposal.scenario_id,
            action=decision.action,
            params=decision.params,
            execute=execute,
            applied=applied,
            admission=_admission(ctx, proposal, context, limits, approval),
        )
    if result.refused:
        return ActResult(
            "blocked", key, None, reconciled=result.reconciled, violations=result.refused
        )
    outcome = Outcome.model_validate(result.outcome) if result.outcome else None
    return ActResult(
        "executed",
        key,
        outcome,
        already_executed=not result.executed_now and not result.reconciled,
        reconciled=result.reconciled,
    )
