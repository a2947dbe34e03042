"""What flows through the graph: pydantic models, checkpointed after every node."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.model_reasoner import IncidentHypothesis, RemedyCandidate
from tools.contract import Decision, IncidentKind, Outcome, RefusedRemedy, Verdict, Violation
from tools.guardrails import GuardVerdict
from tools.observe import Observation


class Approval(BaseModel):
    """A human's answer to a pending approval request."""

    approved: bool
    by: str = "operator"
    reason: str = ""


class ApprovalRequest(BaseModel):
    """What the approval interrupt shows the human (and `payops run` prints)."""

    scenario_id: str
    decision: Decision
    risk: str
    reasons: list[str]
    incident_kind: IncidentKind
    root_cause: list[dict[str, str]]


class AgentState(BaseModel):
    """One cycle of the loop: observe -> reason -> guard -> (approve) -> act -> learn."""

    source: str = Field(description="transactions file or scenario folder")
    lenient: bool = False
    dimensions: list[str] | None = None
    scenario_id: str = ""
    observation: Observation | None = None
    hypotheses: list[IncidentHypothesis] = Field(default_factory=list)
    incident_kind: IncidentKind = "none"
    candidates: list[RemedyCandidate] = Field(default_factory=list)
    refused: list[RefusedRemedy] = Field(default_factory=list)
    decision: Decision | None = None
    guard: GuardVerdict | None = None
    approval: Approval | None = None
    idempotency_key: str | None = None
    outcome: Outcome | None = None
    already_executed: bool = False
    verdict: Verdict | None = None
    violations: list[Violation] = Field(default_factory=list)
    learned: bool = False


GuardRoute = Literal["act", "approve", "learn"]
ApprovalRoute = Literal["act", "learn"]
