"""Rules on an action's parameters: step sizes, exploration, retry attempts and TTLs.

Traffic shifts are bounded in total: the step limit and the exploration floor apply to a
shift plus the earlier shifts it adds to (same source, overlapping segment, last hour).
"""

from __future__ import annotations

from dataclasses import dataclass

from tools import actions
from tools.actions.enable_retry import MAX_ATTEMPTS, EnableRetryParams
from tools.actions.shift_traffic import MAX_STEP, MIN_EXPLORATION, ShiftTrafficParams
from tools.guardrails.base import (
    ROLLING_HOUR,
    Finding,
    GuardInput,
    PastAction,
    segments_overlap,
    violation,
)
from tools.guardrails.limits import GuardLimits


@dataclass(frozen=True)
class _Shifted:
    """A proposed shift together with the earlier shifts it adds to."""

    percent: float
    earlier: tuple[PastAction, ...]

    @property
    def total(self) -> float:
        return self.percent + sum(_percent(a) for a in self.earlier)

    def described(self, source: str) -> str:
        if not self.earlier:
            return f"shift of {self.percent:g}%"
        before = self.total - self.percent
        origins = ", ".join(sorted({a.origin for a in self.earlier}))
        return (
            f"shift of {self.percent:g}% on top of {before:g}% already shifted off {source} "
            f"on an overlapping segment in the last hour ({origins}): {self.total:g}% in all"
        )


def _percent(a: PastAction) -> float:
    try:
        return float(a.params["percent"])
    except (KeyError, TypeError, ValueError):
        return 100.0  # an earlier shift of unknown size counts as all of it (fail closed)


def _shifted(inp: GuardInput, p: ShiftTrafficParams) -> _Shifted:
    # Shifts add up: earlier shifts off the same source, on a segment that overlaps this
    # one, within the rolling hour, from the scenario's list or payops's own ledger.
    earlier = tuple(
        a
        for a in inp.past_actions
        if a.action == "shift_traffic"
        and a.age < ROLLING_HOUR
        and str(a.params.get("from_processor", "")) == p.from_processor
        and segments_overlap(p.segment, a.segment)
    )
    return _Shifted(p.percent, earlier)


def shift_step_limit(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Shifts move at most `max_shift_step_pp` of a segment per rolling hour, in all."""
    p = inp.params
    if not isinstance(p, ShiftTrafficParams):
        return []
    shifted = _shifted(inp, p)
    step = limits.of(MAX_STEP)
    if shifted.total > step:
        return violation(
            "shift_step_limit",
            f"{shifted.described(p.from_processor)} exceeds the step limit of {step:g} pp",
        )
    return []


def shift_keep_exploration(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Shifts, in all, keep some traffic on the source so its recovery can be seen."""
    p = inp.params
    if not isinstance(p, ShiftTrafficParams):
        return []
    keep = limits.of(MIN_EXPLORATION)
    shifted = _shifted(inp, p)
    if shifted.total > 100 - keep:
        return violation(
            "shift_keep_exploration",
            f"{shifted.described(p.from_processor)} leaves {max(100 - shifted.total, 0):g}% "
            f"on {p.from_processor}; >= {keep:g}% must stay for exploration",
        )
    return []


def ttl_limit(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Temporary actions expire within their action's maximum TTL (`ActionSpec.ttl`)."""
    ceiling = actions.get(inp.decision.action).ttl
    if ceiling is None:
        return []
    ttl, most = int(inp.decision.params["ttl_minutes"]), limits.of(ceiling)
    if ttl > most:
        return violation(
            "ttl_limit",
            f"{inp.decision.action} ttl of {ttl} min exceeds the maximum {most:g} min",
        )
    return []


def retry_max_attempts(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Cascading retries stop at `max_retry_attempts` attempts in all."""
    p = inp.params
    most = limits.of(MAX_ATTEMPTS)
    if isinstance(p, EnableRetryParams) and p.max_attempts > most:
        return violation(
            "retry_max_attempts", f"max_attempts {p.max_attempts} exceeds the limit of {most:g}"
        )
    return []
