"""Rules on how sure the agent is: model confidence and the sample behind the anomaly."""

from __future__ import annotations

from tools.guardrails.base import Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits


def min_confidence(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A decision below the confidence floor never runs."""
    confidence = inp.decision.confidence
    if confidence < limits.min_confidence:
        return violation(
            "min_confidence",
            f"confidence {confidence:.2f} is below the floor {limits.min_confidence:.2f}",
        )
    return []


def min_evidence(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """An action needs enough attempts behind the anomaly it acts on."""
    need = limits.evidence_required(inp.decision.action)
    if inp.evidence_attempts < need:
        return violation(
            "min_evidence",
            f"{inp.decision.action} needs >= {need} attempts behind the anomaly, "
            f"has {inp.evidence_attempts}",
        )
    return []
