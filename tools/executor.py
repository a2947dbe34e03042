"""The seam between a guarded decision and the routing system that carries it out.

`Executor` is what a real routing/orchestration API implements; `SimulatedExecutor` acts
through the simulator. Every execution carries an idempotency key derived from the content
of the decision, so the same remedy for the same anomaly is executed at most once (the
ledger in tools/ledger.py enforces it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from tools.contract import Decision, Outcome, ScenarioContext
from tools.routes import SegmentSnapshot
from tools.simulator import simulate


class Executor(Protocol):
    """Carries out an approved decision and reports its effect on the target segment."""

    def execute(
        self,
        decision: Decision,
        idempotency_key: str,
        snap: SegmentSnapshot,
        context: ScenarioContext,
        seed: int,
    ) -> Outcome:
        """Apply `decision` once per `idempotency_key`; return the observed or estimated Outcome."""
        ...


class SimulatedExecutor:
    """An executor that changes nothing: the Outcome is the simulator's estimate."""

    def execute(
        self,
        decision: Decision,
        idempotency_key: str,
        snap: SegmentSnapshot,
        context: ScenarioContext,
        seed: int,
    ) -> Outcome:
        """Simulate `decision` on `snap` (the snapshot of its target segment)."""
        if not idempotency_key:
            raise ValueError("an execution needs an idempotency key")
        return simulate(decision, snap, context, seed)


def _canonical_params(decision: Decision) -> dict[str, Any]:
    params = dict(decision.params)
    # The retry codes are a set: their order must not make a different key.
    if decision.action == "enable_retry":
        params["decline_codes"] = sorted(set(params["decline_codes"]))
    return params


def idempotency_key(decision: Decision, anomaly_fingerprint: str) -> str:
    """sha256 of the canonical JSON of (anomaly fingerprint, action, params).

    Content-derived and stable across processes; independent of confidence, risk,
    rationale and which reasoner proposed the decision.
    """
    payload = {
        "anomaly": anomaly_fingerprint,
        "action": decision.action,
        "params": _canonical_params(decision),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
