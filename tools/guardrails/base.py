"""The one shape of a guard rule, and what rules read and return.

A rule is a function `(GuardInput, GuardLimits) -> list[Finding]`: a `Violation` blocks
the decision, an `Escalation` sends it to a human. Rules are registered in
`tools.guardrails.engine.RULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, Field

from tools.contract import (
    Decision,
    RiskLevel,
    ScenarioContext,
    Segment,
    Violation,
)
from tools.guardrails.limits import GuardLimits
from tools.routes import SegmentSnapshot

# Actions that change nothing in the payment flow: exempt from kill switch and cooldowns.
PASSIVE_ACTIONS: frozenset[str] = frozenset({"no_action", "notify_oncall"})


@dataclass(frozen=True)
class GuardInput:
    """Everything a rule may look at. Built by the graph's guard node.

    `snapshot` is the decision's target segment (`decision.target_segment()`) over the
    run's windows; `evidence_attempts` the current-window attempts behind the anomaly the
    decision acts on; `now` the end of the current window; `anomaly_start` when the drop
    began (None if unknown).
    """

    decision: Decision
    snapshot: SegmentSnapshot
    evidence_attempts: int
    context: ScenarioContext
    now: datetime
    anomaly_start: datetime | None = None

    @cached_property
    def params(self) -> BaseModel:
        """The decision's params as their action's model (validated once, shared by rules)."""
        return self.decision.typed_params()


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


def violation(rule: str, detail: str) -> list[Finding]:
    """A one-item finding list: the usual return of a rule that fires."""
    return [Violation(rule=rule, detail=detail)]


def segments_overlap(a: Segment, b: Segment) -> bool:
    """True when some transaction can be in both segments (no dimension disagrees)."""
    return all(b[dim] == value for dim, value in a.items() if dim in b)


def is_healthy(inp: GuardInput, processor: str) -> bool:
    """What the context says about a processor's health (healthy when it says nothing)."""
    info = inp.context.processors.get(processor)
    return True if info is None else info.healthy


def serves_segment(inp: GuardInput, processor: str) -> bool:
    """True when the processor carried traffic of the segment in either window."""
    route = inp.snapshot.routes.get(processor)
    return route is not None and (route.attempts + route.baseline_attempts) > 0
