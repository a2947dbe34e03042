"""What flows through the graph: pydantic models, checkpointed after every node, and what
the reasoner hands the model (`ReasoningEvidence`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tools.contract import (
    AnomalyRecord,
    Decision,
    IncidentKind,
    Outcome,
    ProcessorInfo,
    RecentChange,
    RefusedRemedy,
    Segment,
    Verdict,
    Violation,
)
from tools.guardrails import GuardVerdict
from tools.observe import Observation


class IncidentHypothesis(BaseModel):
    """One incident classification the deterministic reasoner considered."""

    incident_kind: IncidentKind
    confidence: float
    evidence: list[str] = Field(default_factory=list)
    # The root cause this hypothesis reads, when it is an alternative the data fits as
    # well as the primary one (None: the primary root cause).
    segment: Segment | None = None


class RemedyCandidate(BaseModel):
    """A valid remedy with its simulated effect; `score` is the deterministic ranking."""

    decision: Decision
    estimated_improvement: float
    score: float


class ReasoningEvidence(BaseModel):
    """Everything the model is shown, serialised as JSON between the evidence delimiters.

    `candidates` are listed best first (the stub picks the first). Keep `anomalies` to the
    top few: it is prompt text, and the model needs the lead signals, not the long tail.
    """

    scenario_id: str
    incident_kind: IncidentKind
    hypotheses: list[IncidentHypothesis] = Field(default_factory=list)
    root_cause: list[Segment] = Field(default_factory=list)
    anomalies: list[AnomalyRecord] = Field(default_factory=list)
    candidates: list[RemedyCandidate] = Field(default_factory=list)
    processors: dict[str, ProcessorInfo] = Field(default_factory=dict)
    recent_changes: list[RecentChange] = Field(default_factory=list)


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
