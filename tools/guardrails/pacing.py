"""Rules on how much the agent changes at once: kill switch, cooldowns, rates, volume."""

from __future__ import annotations

from datetime import timedelta

from tools.contract import (
    EnableRetryParams,
    NotifyOncallParams,
    ShiftTrafficParams,
    format_segment,
    iso,
    utc,
)
from tools.guardrails.base import (
    PASSIVE_ACTIONS,
    Escalation,
    Finding,
    GuardInput,
    segments_overlap,
    violation,
)
from tools.guardrails.limits import GuardLimits

_SEVERITY = {"info": 0, "warning": 1, "critical": 2}


def kill_switch(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """With the kill switch engaged, only notifications go out."""
    if limits.kill_switch and inp.decision.action not in PASSIVE_ACTIONS:
        return violation(
            "kill_switch", f"kill switch engaged: {inp.decision.action} is not allowed"
        )
    return []


def segment_cooldown(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """One active action per segment: none on an overlapping segment within the cooldown."""
    if inp.decision.action in PASSIVE_ACTIONS:
        return []
    since = utc(inp.now) - timedelta(minutes=limits.cooldown_minutes)
    target = inp.decision.target_segment()
    for a in inp.context.recent_actions:
        if a.action in PASSIVE_ACTIONS or a.ts <= since:
            continue
        if segments_overlap(target, a.target_segment()):
            return violation(
                "segment_cooldown",
                f"{a.action} on {format_segment(a.target_segment())} at {iso(a.ts)} is "
                f"within the {limits.cooldown_minutes:g} min cooldown of "
                f"{format_segment(target)}",
            )
    return []


def notify_dedup(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Page once per window: a notification at the same or higher severity suppresses it."""
    p = inp.params
    if not isinstance(p, NotifyOncallParams):
        return []
    since = utc(inp.now) - timedelta(minutes=limits.notify_dedup_minutes)
    for a in inp.context.recent_actions:
        if a.action != "notify_oncall" or a.ts <= since:
            continue
        earlier = str(a.params.get("severity", "warning"))
        if _SEVERITY.get(earlier, 1) >= _SEVERITY[p.severity]:
            return violation(
                "notify_dedup",
                f"on-call already notified ({earlier}) at {iso(a.ts)}, within "
                f"{limits.notify_dedup_minutes:g} min",
            )
    return []


def hourly_action_rate(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """At most `max_actions_per_hour` actions that change traffic in a rolling hour."""
    if inp.decision.action in PASSIVE_ACTIONS:
        return []
    since = utc(inp.now) - timedelta(hours=1)
    taken = sum(
        1 for a in inp.context.recent_actions if a.action not in PASSIVE_ACTIONS and a.ts > since
    )
    if taken >= limits.max_actions_per_hour:
        return violation(
            "hourly_action_rate",
            f"{taken} actions in the last hour; the limit is {limits.max_actions_per_hour}",
        )
    return []


def affected_share(inp: GuardInput) -> float:
    """Share of all current-window attempts the decision would touch."""
    snap, p = inp.snapshot, inp.params
    if inp.decision.action in PASSIVE_ACTIONS or snap.total_attempts == 0:
        return 0.0
    if isinstance(p, ShiftTrafficParams):
        route = snap.routes.get(p.from_processor)
        base = route.attempts if route is not None else snap.attempts
        affected = base * p.percent / 100
    elif isinstance(p, EnableRetryParams):
        affected = sum(snap.decline_codes.get(c, 0) for c in set(p.decline_codes))
    else:
        affected = snap.attempts
    return affected / snap.total_attempts


def affected_volume_cap(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Above the affected-volume cap a human approves."""
    share = affected_share(inp)
    if share > limits.max_affected_share:
        return [
            Escalation(
                "affected_volume_cap",
                f"affects {share:.0%} of current attempts, above the "
                f"{limits.max_affected_share:.0%} cap",
            )
        ]
    return []
