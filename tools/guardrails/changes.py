"""Rules on undoing changes: config rollbacks and fraud-rule adjustments."""

from __future__ import annotations

from tools.contract import AdjustFraudRuleParams, RecentChange, RollbackConfigParams, iso
from tools.guardrails.base import Escalation, Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits


def _same_change(a: RecentChange, b: RecentChange) -> bool:
    return (a.ts, a.kind, a.target, a.version) == (b.ts, b.kind, b.target, b.version)


def _is_fraud_rule(change: RecentChange) -> bool:
    return "fraud" in change.kind.lower()


def rollback_known_change(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Only a change listed in context.recent_changes can be rolled back."""
    p = inp.params
    if not isinstance(p, RollbackConfigParams):
        return []
    if not any(_same_change(p.change, c) for c in inp.context.recent_changes):
        return violation(
            "rollback_known_change",
            f"change {p.change.kind} {p.change.version or ''} at {iso(p.change.ts)} is not "
            "one of the recent changes",
        )
    return []


def rollback_precedes_anomaly(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """The anomaly must start after the change that is rolled back."""
    p = inp.params
    if not isinstance(p, RollbackConfigParams):
        return []
    if inp.anomaly_start is None:
        return [
            Escalation(
                "rollback_precedes_anomaly",
                "anomaly start unknown: cannot show the change preceded it",
            )
        ]
    if p.change.ts >= inp.anomaly_start:
        return violation(
            "rollback_precedes_anomaly",
            f"change at {iso(p.change.ts)} is not before the anomaly start "
            f"{iso(inp.anomaly_start)}",
        )
    return []


def fraud_rule_rollback_needs_human(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Rolling back a fraud rule changes fraud exposure: a human approves it."""
    p = inp.params
    if isinstance(p, RollbackConfigParams) and _is_fraud_rule(p.change):
        return [
            Escalation(
                "fraud_rule_rollback_needs_human",
                f"rolling back fraud rule change {p.change.version or p.change.kind} needs a human",
            )
        ]
    return []


def fraud_rule_shadow_first(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A fraud rule goes to shadow mode before it is disabled or re-thresholded."""
    p = inp.params
    if not isinstance(p, AdjustFraudRuleParams) or p.mode == "shadow":
        return []
    shadowed = any(
        a.action == "adjust_fraud_rule"
        and a.params.get("merchant_id") == p.merchant_id
        and a.params.get("rule") == p.rule
        and a.params.get("mode") == "shadow"
        for a in inp.context.recent_actions
    )
    if not shadowed:
        return violation(
            "fraud_rule_shadow_first",
            f"rule {p.rule} of {p.merchant_id} must run in shadow mode before mode {p.mode}",
        )
    return []
