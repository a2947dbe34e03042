"""From a decision to its effect: guard it, and execute an approved one exactly once.

The loop's `guard` and `act` nodes and the chat's `simulate` and `propose_action` tools all
come through these functions, so a decision means the same thing, and is executed under
the same idempotency key, whichever way it arrived.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agent import reasoning
from tools.contract import Decision, Outcome, ScenarioContext
from tools.executor import Executor, idempotency_key
from tools.guardrails import GuardInput, GuardLimits, GuardVerdict, evaluate
from tools.ledger import ActionLedger
from tools.observe import Observation
from tools.routes import SegmentSnapshot


def anomaly_fingerprint(scenario_id: str, obs: Observation) -> str:
    """What identifies the incident an action answers: scenario, window and root cause."""
    payload = {
        "scenario": scenario_id,
        "current": [obs.current.start.isoformat(), obs.current.end.isoformat()],
        "root_cause": sorted(json.dumps(s, sort_keys=True) for s in obs.root_cause),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def evidence_attempts(obs: Observation) -> int:
    """Current-window attempts behind the primary root cause (0 when nothing was found)."""
    return obs.evidence[0].current.attempts if obs.evidence else 0


def guard_decision(
    decision: Decision,
    obs: Observation,
    context: ScenarioContext,
    snap: SegmentSnapshot,
    limits: GuardLimits,
) -> GuardVerdict:
    """Guard's verdict on `decision` against the incident `obs` found.

    `snap` is the snapshot of `decision.target_segment()` over the observation's windows.
    """
    return evaluate(
        GuardInput(
            decision=decision,
            snapshot=snap,
            evidence_attempts=evidence_attempts(obs),
            context=context,
            now=obs.current.end,
            anomaly_start=reasoning.anomaly_start(obs, context),
            root_cause=tuple(obs.root_cause),
        ),
        limits,
    )


@dataclass(frozen=True)
class Execution:
    """What executing a decision did: its key, its outcome and whether it ran before."""

    idempotency_key: str
    outcome: Outcome | None
    already_executed: bool


def execute_decision(
    decision: Decision,
    *,
    fingerprint: str,
    snap: SegmentSnapshot,
    context: ScenarioContext,
    executor: Executor,
    ledger: ActionLedger,
    thread_id: str,
    scenario_id: str,
    seed: int,
) -> Execution:
    """Execute an approved decision exactly once, keyed by its content in the ledger.

    The key is derived from `fingerprint` (the incident, `anomaly_fingerprint`), the action
    and its params. An executed key returns its stored outcome without executing again.
    """
    key = idempotency_key(decision, fingerprint)

    def execute() -> dict[str, Any]:
        outcome = executor.execute(decision, key, snap, context, seed)
        return outcome.model_dump(mode="json")

    # An in-doubt claim (crash between claim and record) is reconciled by re-running the
    # simulator, which has no side effects; a real executor would query its API.
    result = ledger.run_once(
        key,
        thread_id=thread_id,
        scenario_id=scenario_id,
        action=decision.action,
        params=decision.params,
        execute=execute,
        reconcile=lambda _entry: execute(),
    )
    outcome = Outcome.model_validate(result.outcome) if result.outcome else None
    return Execution(
        idempotency_key=key,
        outcome=outcome,
        already_executed=not result.executed_now and not result.reconciled,
    )
