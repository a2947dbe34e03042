"""The registry of guard rules and the verdict they add up to.

Adding a rule: write `def my_rule(inp: GuardInput, limits: GuardLimits) -> list[Finding]`
in the file of its concern and add one line to `RULES`. `registered_rule(rule)` adds one
for the length of a block (a test's toy rule, a plugin), after the built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tools import actions
from tools.contract import RISK_ORDER, ApprovalReason, RiskLevel, Violation
from tools.guardrails import authentication, changes, evidence, pacing, params, retry, routing
from tools.guardrails.base import Escalation, GuardInput, GuardVerdict, Rule
from tools.guardrails.limits import GuardLimits

# The escalation of a decision whose risk is high without a rule asking for a human.
HIGH_RISK = "high_risk"

RULES: tuple[Rule, ...] = (
    # evidence
    evidence.min_confidence,
    evidence.min_evidence,
    # parameter bounds
    params.shift_step_limit,
    params.shift_keep_exploration,
    params.ttl_limit,
    params.retry_max_attempts,
    # moving traffic
    routing.distinct_processors,
    routing.processor_serves_segment,
    routing.target_healthy,
    routing.target_route_evidence,
    routing.target_not_worse,
    routing.last_healthy_route,
    # retries
    retry.retry_never_codes,
    retry.retry_no_cross_processor_51,
    retry.retry_after_failed_3ds,
    # 3-D Secure
    authentication.relax_3ds_sca,
    authentication.rollback_3ds_sca,
    authentication.force_3ds_needs_1a,
    # rollbacks and fraud rules
    changes.rollback_known_change,
    changes.rollback_touches_incident,
    changes.rollback_recent,
    changes.rollback_precedes_anomaly,
    changes.fraud_rule_rollback_needs_human,
    changes.rollback_unknown_change_kind,
    changes.fraud_rule_shadow_first,
    # pacing
    pacing.kill_switch,
    pacing.segment_cooldown,
    pacing.notify_dedup,
    pacing.hourly_action_rate,
    pacing.affected_volume_cap,
)


_ADDED: list[Rule] = []


def rules() -> tuple[Rule, ...]:
    """Every rule guard runs: the built-in `RULES`, then those registered."""
    return (*RULES, *_ADDED)


@contextmanager
def registered_rule(rule: Rule) -> Iterator[Rule]:
    """Run `rule` after the built-in rules for the length of a `with` block."""
    if rule in rules():
        raise ValueError(f"rule {rule.__name__!r} is already registered")
    _ADDED.append(rule)
    try:
        yield rule
    finally:
        _ADDED.remove(rule)


def evaluate(inp: GuardInput, limits: GuardLimits) -> GuardVerdict:
    """Run every rule on the decision and decide: approved, needs_approval or blocked.

    Any violation blocks. Otherwise a decision whose risk (after escalations) is high, or
    that any rule escalates, needs a human. `no_action` is always approved.
    """
    decision = inp.decision
    if decision.action == actions.NO_ACTION:
        return GuardVerdict(status="approved", risk=decision.risk)

    violations: list[Violation] = []
    escalations: list[Escalation] = []
    for rule in rules():
        for finding in rule(inp, limits):
            if isinstance(finding, Escalation):
                escalations.append(finding)
            else:
                violations.append(finding)

    risk: RiskLevel = max(
        [decision.risk, *(e.risk for e in escalations)], key=RISK_ORDER.__getitem__
    )
    reasons = [ApprovalReason(rule=e.rule, detail=e.reason) for e in escalations]
    if RISK_ORDER[risk] >= RISK_ORDER["high"] and not escalations:
        action = decision.action
        why = (
            f"{action} is a high-risk action"
            if actions.get(action).risk == "high"
            else f"the risk of this {action} is high"
        )
        reasons.append(ApprovalReason(rule=HIGH_RISK, detail=f"{why}; a human approves it"))

    if violations:
        status = "blocked"
    elif reasons:
        status = "needs_approval"
    else:
        status = "approved"
    return GuardVerdict(
        status=status,
        violations=violations,
        risk=risk,
        reasons_for_approval=[f"{r.rule}: {r.detail}" for r in reasons],
        escalations=reasons,
    )
