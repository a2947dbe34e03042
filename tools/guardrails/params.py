"""Rules on an action's parameters: step sizes, exploration, retry attempts and TTLs."""

from __future__ import annotations

from tools.contract import (
    DisablePaymentMethodParams,
    EnableRetryParams,
    FailoverProcessorParams,
    Force3dsParams,
    Relax3dsParams,
    ShiftTrafficParams,
)
from tools.guardrails.base import Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits


def shift_step_limit(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """One shift moves at most `max_shift_step_pp` of the segment."""
    p = inp.params
    if isinstance(p, ShiftTrafficParams) and p.percent > limits.max_shift_step_pp:
        return violation(
            "shift_step_limit",
            f"shift of {p.percent:g}% exceeds the step limit of {limits.max_shift_step_pp:g} pp",
        )
    return []


def shift_keep_exploration(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A shift keeps some traffic on the source so its recovery can be seen."""
    p = inp.params
    keep = limits.min_source_exploration_pct
    if isinstance(p, ShiftTrafficParams) and p.percent > 100 - keep:
        return violation(
            "shift_keep_exploration",
            f"shift of {p.percent:g}% leaves {100 - p.percent:g}% on {p.from_processor}; "
            f">= {keep:g}% must stay for exploration",
        )
    return []


def ttl_limit(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Temporary actions expire within their action's maximum TTL."""
    p = inp.params
    if isinstance(p, FailoverProcessorParams):
        most = limits.max_failover_ttl_minutes
    elif isinstance(p, Force3dsParams | Relax3dsParams):
        most = limits.max_3ds_ttl_minutes
    elif isinstance(p, DisablePaymentMethodParams):
        most = limits.max_disable_ttl_minutes
    else:
        return []
    if p.ttl_minutes > most:
        return violation(
            "ttl_limit",
            f"{inp.decision.action} ttl of {p.ttl_minutes} min exceeds the maximum {most} min",
        )
    return []


def retry_max_attempts(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Cascading retries stop at `max_retry_attempts` attempts in all."""
    p = inp.params
    if isinstance(p, EnableRetryParams) and p.max_attempts > limits.max_retry_attempts:
        return violation(
            "retry_max_attempts",
            f"max_attempts {p.max_attempts} exceeds the limit of {limits.max_retry_attempts}",
        )
    return []
