"""Rules on how much the agent changes at once: kill switch, cooldowns, rates, volume.

They count every earlier action (`GuardInput.past_actions`): those the scenario lists and
those payops's own ledger holds, each aged on its own clock.
"""

from __future__ import annotations

from datetime import timedelta

from tools.actions import is_passive
from tools.actions.enable_retry import EnableRetryParams
from tools.actions.notify_oncall import NotifyOncallParams
from tools.actions.shift_traffic import ShiftTrafficParams
from tools.contract import format_segment, iso
from tools.guardrails.base import (
    ROLLING_HOUR,
    Escalation,
    Finding,
    GuardInput,
    PastAction,
    segments_overlap,
    violation,
)
from tools.guardrails.limits import GuardLimits

_SEVERITY = {"info": 0, "warning": 1, "critical": 2}


def history_horizon(limits: GuardLimits) -> timedelta:
    """How far back pacing looks: the longest of its windows."""
    return max(
        ROLLING_HOUR,
        timedelta(minutes=limits.cooldown_minutes),
        timedelta(minutes=limits.notify_dedup_minutes),
    )


def _when(a: PastAction) -> str:
    return f"at {iso(a.at)} ({a.origin})"


def kill_switch(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """With the kill switch engaged, only notifications go out."""
    if limits.kill_switch and not is_passive(inp.decision.action):
        return violation(
            "kill_switch", f"kill switch engaged: {inp.decision.action} is not allowed"
        )
    return []


def segment_cooldown(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """One active action per segment: none on an overlapping segment within the cooldown."""
    if is_passive(inp.decision.action):
        return []
    cooldown = timedelta(minutes=limits.cooldown_minutes)
    target = inp.decision.target_segment()
    for a in inp.past_actions:
        if is_passive(a.action) or a.age >= cooldown:
            continue
        if segments_overlap(target, a.segment):
            return violation(
                "segment_cooldown",
                f"{a.action} on {format_segment(a.segment)} {_when(a)} is within the "
                f"{limits.cooldown_minutes:g} min cooldown of {format_segment(target)}",
            )
    return []


def notify_dedup(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Page once per window: a notification at the same or higher severity suppresses it."""
    p = inp.params
    if not isinstance(p, NotifyOncallParams):
        return []
    window = timedelta(minutes=limits.notify_dedup_minutes)
    for a in inp.past_actions:
        if a.action != "notify_oncall" or a.age >= window:
            continue
        earlier = str(a.params.get("severity", "warning"))
        if _SEVERITY.get(earlier, 1) >= _SEVERITY[p.severity]:
            return violation(
                "notify_dedup",
                f"on-call already notified ({earlier}) {_when(a)}, within "
                f"{limits.notify_dedup_minutes:g} min",
            )
    return []


def hourly_action_rate(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """At most `max_actions_per_hour` actions that change traffic in a rolling hour."""
    if is_passive(inp.decision.action):
        return []
    taken = sum(
        1 for a in inp.past_actions if not is_passive(a.action) and a.age < ROLLING_HOUR
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
    if is_passive(inp.decision.action) or snap.total_attempts == 0:
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
