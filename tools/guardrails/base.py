"""The one shape of a guard rule, and what rules read and return.

A rule is a function `(GuardInput, GuardLimits) -> list[Finding]`: a `Violation` blocks
the decision, an `Escalation` sends it to a human. Rules are registered in
`tools.guardrails.engine.RULES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools import actions
from tools.contract import (
    ApprovalReason,
    Decision,
    RiskLevel,
    ScenarioContext,
    Segment,
    Violation,
    utc,
)
from tools.guardrails.limits import DATA_HEALTH_MAX_DROP_PP, DATA_HEALTH_P_VALUE, GuardLimits
from tools.identifiers import lookup
from tools.identifiers import segments_overlap as segments_overlap  # rules import it from here
from tools.routes import RouteStats, SegmentSnapshot
from tools.stats import rate_increase_p_value

# The rolling window over which actions are counted (hourly rate) and shifts add up.
ROLLING_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class PastAction:
    """An action already taken, and how long before the guard's "now" it was taken.

    Each source has its own clock: an action listed in the scenario's `recent_actions` is
    in data time (its age is measured from the end of the current window), one from
    payops's ledger in wall-clock time (measured from the clock when guard ran).
    """

    action: str
    params: Mapping[str, Any]
    segment: Segment
    at: datetime
    age: timedelta
    origin: str  # "scenario", or "ledger, <thread id>"

    @classmethod
    def of(
        cls,
        action: str,
        params: Mapping[str, Any],
        at: datetime,
        now: datetime,
        origin: str,
    ) -> PastAction:
        """A past action with its target segment and its age at `now` (same clock as `at`)."""
        # The params were validated when the action was decided; reading its segment must
        # not fail on an entry written by another version.
        segment = actions.target_segment(action, params)
        return cls(action, params, segment, at, utc(now) - utc(at), origin)


@dataclass(frozen=True)
class GuardInput:
    """Everything a rule may look at. Built by `agent.reasoning.guard_input`.

    `snapshot` is the decision's target segment (`decision.target_segment()`) over the
    run's windows; `evidence_attempts` the current-window attempts behind the anomaly the
    decision acts on; `now` the end of the current window; `anomaly_start` when the drop
    began (None if unknown); `root_cause` the incident's root-cause segments (a rollback
    must touch one of them). `ledger_history` is what payops itself did recently (from its
    ledger, ages in wall-clock time), beside the scenario's `context.recent_actions`.
    """

    decision: Decision
    snapshot: SegmentSnapshot
    evidence_attempts: int
    context: ScenarioContext
    now: datetime
    anomaly_start: datetime | None = None
    # Keyword-only and required: a caller that forgets it would block every rollback.
    root_cause: tuple[Segment, ...] = field(kw_only=True)
    ledger_history: tuple[PastAction, ...] = ()

    @cached_property
    def params(self) -> BaseModel:
        """The decision's params as their action's model (validated once, shared by rules)."""
        return self.decision.typed_params()

    @cached_property
    def past_actions(self) -> tuple[PastAction, ...]:
        """Every earlier action pacing counts: the scenario's and payops's own."""
        listed = tuple(
            PastAction.of(a.action, a.params, a.ts, self.now, "scenario")
            for a in self.context.recent_actions
        )
        return listed + self.ledger_history


@dataclass(frozen=True)
class Escalation:
    """A reason a human must approve the decision; raises its risk to `risk`."""

    rule: str
    reason: str
    risk: RiskLevel = "high"


Finding = Violation | Escalation
Rule = Callable[[GuardInput, GuardLimits], list[Finding]]


class GuardVerdict(BaseModel):
    """The guard's answer: may the decision run, and if not, why."""

    status: Literal["approved", "needs_approval", "blocked"]
    violations: list[Violation] = Field(default_factory=list)
    risk: RiskLevel
    reasons_for_approval: list[str] = Field(default_factory=list)
    # The same reasons as {rule, detail}: what `--json` and the learning of a run show.
    escalations: list[ApprovalReason] = Field(default_factory=list)


def violation(rule: str, detail: str) -> list[Finding]:
    """A one-item finding list: the usual return of a rule that fires."""
    return [Violation(rule=rule, detail=detail)]


def find_route(snapshot: SegmentSnapshot, processor: str) -> RouteStats | None:
    """The processor's route on the snapshot's segment, found by meaning (any spelling).

    None for a processor the data does not know, including a look-alike spelling.
    """
    return lookup(snapshot.routes, processor)


def unhealthy_reason(
    context: ScenarioContext, snapshot: SegmentSnapshot, processor: str
) -> str | None:
    """Why `processor` must not receive traffic of the snapshot's segment, or None if healthy.

    Fail closed (docs/identifiers.md). In every case the data must show the processor
    (any spelling) carrying current-window traffic of the segment: a processor the data
    does not know, a look-alike spelling included, is unknown, and unknown is not healthy.
    Then
    - when the context lists processors, it decides: a processor it lists as healthy is
      healthy; one it marks unhealthy, or does not list (unknown), is not;
    - when it lists none (a plain transactions file), the data decides: the processor is
      not healthy when its success rate on the segment fell from its own baseline by at
      least DATA_HEALTH_MAX_DROP_PP with a one-sided p-value below DATA_HEALTH_P_VALUE.
    """
    route = find_route(snapshot, processor)
    if route is None:
        return f"{processor} carries no traffic of the segment, so it is unknown"
    if route.attempts == 0:
        return f"{processor} carried no traffic of the segment in the current window"
    if context.processors:
        info = context.processor(processor)
        if info is None:
            return f"{processor} is not a processor the context lists, so it is unknown"
        return None if info.healthy else f"{processor} is marked unhealthy"
    drop = route.baseline_success_rate - route.success_rate
    if route.baseline_attempts > 0 and drop * 100 >= DATA_HEALTH_MAX_DROP_PP:
        p_value = rate_increase_p_value(
            route.baseline_attempts,
            route.baseline_attempts - route.baseline_approved,
            route.attempts,
            route.attempts - route.approved,
        )
        if p_value < DATA_HEALTH_P_VALUE:
            return (
                f"{processor} success rate on the segment fell {drop * 100:.1f} pp from its "
                f"baseline (p={p_value:.1e}) and the context says nothing of its health"
            )
    return None


def is_healthy(context: ScenarioContext, snapshot: SegmentSnapshot, processor: str) -> bool:
    """True when `processor` may receive traffic of the segment (see `unhealthy_reason`)."""
    return unhealthy_reason(context, snapshot, processor) is None


def serves_segment(inp: GuardInput, processor: str) -> bool:
    """True when the processor carried traffic of the segment in either window."""
    route = find_route(inp.snapshot, processor)
    return route is not None and (route.attempts + route.baseline_attempts) > 0
