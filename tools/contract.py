"""Pydantic models of the formats users depend on (shared/CONTRACT.md).

Every file payops reads or writes, and everything a model proposes, passes through one of
these models. Internal computation uses plain dataclasses; these are the boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from tools import actions, incidents
from tools.fields import NO_VALUE as NO_VALUE

# The field types the contract shares with the catalogues below it (tools/fields.py),
# under the contract's names.
from tools.fields import RISK_ORDER as RISK_ORDER
from tools.fields import ClosedModel as _Model
from tools.fields import ProcessorInfo as ProcessorInfo
from tools.fields import Rationale as Rationale
from tools.fields import RecentChange as RecentChange
from tools.fields import RiskLevel as RiskLevel
from tools.fields import Segment as Segment
from tools.fields import Severity as Severity
from tools.fields import format_segment as format_segment
from tools.fields import iso as iso
from tools.fields import utc as utc
from tools.identifiers import lookup, normalize_keys

FORMAT_VERSION = 1

# CONTRACT.md section 1, in the order payops writes and tables hold them.
TRANSACTION_COLUMNS: tuple[str, ...] = (
    "txn_id",
    "ts",
    "merchant_id",
    "processor",
    "payment_method",
    "card_network",
    "issuer_country",
    "currency",
    "amount_minor",
    "status",
    "decline_code",
    "latency_ms",
    "three_ds",
    "is_retry",
)

DEFAULT_DIMENSIONS: tuple[str, ...] = (
    "merchant_id",
    "processor",
    "payment_method",
    "card_network",
    "issuer_country",
    "currency",
)

# CONTRACT.md section 2's closed list of incident kinds is the incident catalogue's
# registry (tools/incidents/registry.py), and section 4's list of actions the action
# catalogue's (tools/actions/registry.py), each in its order: live views, so a kind or an
# action registered later (a test's toy) is listed too.
INCIDENT_KINDS: Sequence[str] = incidents.NAMES
ACTION_NAMES: Sequence[str] = actions.NAMES


class _OneOf:
    """Validation and JSON schema of a name from a registry: a string enum of its names.

    Checked when a model is validated (not when it is defined), with the error a Literal
    of the registered names would give. Not callable: LangGraph takes a callable in a
    state field's metadata for its reducer.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = names

    def validate(self, value: object) -> str:
        """`value` if it is a registered name; a Literal's error otherwise."""
        if isinstance(value, str) and value in self.names:
            return value
        shown = [repr(n) for n in self.names]
        expected = f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.names)}


_KINDS = _OneOf(INCIDENT_KINDS)
_ACTIONS = _OneOf(ACTION_NAMES)
# An incident kind's name, and an action's.
IncidentKind = Annotated[str, PlainValidator(_KINDS.validate), _KINDS]
ActionName = Annotated[str, PlainValidator(_ACTIONS.validate), _ACTIONS]

Verdict = Literal["executed", "blocked", "needs_approval", "no_action"]


class TimeWindow(_Model):
    """A half-open time window [start, end) in UTC."""

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return utc(value)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    @property
    def minutes(self) -> float:
        """Length of the window in minutes."""
        return (self.end - self.start).total_seconds() / 60.0


class Decision(_Model):
    """A proposed remedy: one catalogue action with typed, validated parameters.

    `params` stays a plain dict in the serialised record (the contract's shape), but it is
    validated against the action's params model, so a Decision that exists is well-formed.
    Risk can be raised above the catalogue default, never lowered below it.
    """

    action: ActionName
    params: dict[str, Any] = Field(default_factory=dict)
    confidence: float = Field(ge=0.0, le=1.0)
    risk: RiskLevel = "none"
    reasoner: str = "deterministic"
    rationale: Rationale = ""

    @model_validator(mode="after")
    def _check_params_and_risk(self) -> Decision:
        spec = actions.get(self.action)
        self.params = spec.params.model_validate(self.params).model_dump(
            mode="json", exclude_none=True
        )
        if RISK_ORDER[self.risk] < RISK_ORDER[spec.risk]:
            self.risk = spec.risk
        return self

    def typed_params(self) -> BaseModel:
        """The params as their action's pydantic model."""
        model: type[BaseModel] = actions.get(self.action).params
        return model.model_validate(self.params)

    def target_segment(self) -> Segment:
        """The segment the action applies to ({} for actions that have none)."""
        return actions.target_segment(self.action, self.params)


class RecentAction(Decision):
    """An action taken earlier, as listed in `context.recent_actions` (a Decision plus `ts`)."""

    model_config = ConfigDict(extra="allow")
    ts: datetime
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return utc(value)


class ScenarioContext(BaseModel):
    """Operational context of a scenario: processors, recent actions and recent changes.

    Processor names are identifiers: kept normalized, and two names of one processor
    (`acq_a`, `ACQ_A `) are an error rather than two processors.
    """

    model_config = ConfigDict(extra="allow")
    processors: dict[str, ProcessorInfo] = Field(default_factory=dict)
    recent_actions: list[RecentAction] = Field(default_factory=list)
    recent_changes: list[RecentChange] = Field(default_factory=list)

    @field_validator("processors")
    @classmethod
    def _processor_names(cls, value: dict[str, ProcessorInfo]) -> dict[str, ProcessorInfo]:
        return normalize_keys(value, "processors")

    def processor(self, name: str) -> ProcessorInfo | None:
        """What the context says about processor `name` (any spelling of it), else None."""
        return lookup(self.processors, name)


class Expected(BaseModel):
    """Ground truth of a recorded scenario."""

    model_config = ConfigDict(extra="allow")
    anomalous: bool
    incident_kind: IncidentKind = "none"
    root_cause: list[Segment] = Field(default_factory=list)
    acceptable_actions: list[ActionName] = Field(default_factory=list)
    forbidden_actions: list[ActionName] = Field(default_factory=list)


class ScenarioSpec(BaseModel):
    """`scenario.json` of a recorded scenario folder (CONTRACT.md section 2)."""

    model_config = ConfigDict(extra="allow")
    format_version: int = FORMAT_VERSION
    id: str
    description: str = ""
    baseline_window: TimeWindow | None = None
    current_window: TimeWindow | None = None
    dimensions: list[str] | None = None
    context: ScenarioContext = Field(default_factory=ScenarioContext)
    expected: Expected | None = None


# ---------------------------------------------------------------------------------------
# Results (CONTRACT.md section 3).


class CodeShift(_Model):
    """How one decline code's share of attempts moved between the windows."""

    code: str
    baseline_share: float
    current_share: float
    baseline_count: int
    current_count: int


class AnomalyRecord(BaseModel):
    """One anomaly with its evidence. The first six fields are the contract's."""

    model_config = ConfigDict(extra="allow")
    segment: Segment
    metric: str
    baseline: float
    current: float
    p_value: float
    severity: Severity
    baseline_attempts: int = 0
    current_attempts: int = 0
    excess: float = 0.0
    decline_codes: list[CodeShift] = Field(default_factory=list)
    latency_p95_ms: tuple[float, float] | None = None
    # What distinguishes the detector within its signal: the decline code of `decline_code`.
    detail: str | None = None


class Violation(_Model):
    """A guardrail that failed, with a detail a person can act on."""

    rule: str
    detail: str


class ApprovalReason(_Model):
    """A rule that sends a decision to a human (an escalation), with its detail."""

    rule: str
    detail: str


class RefusedRemedy(_Model):
    """A remedy the reasoner considered and guard would refuse, with every rule that does."""

    action: ActionName
    params: dict[str, Any]
    violations: list[Violation]


class Outcome(BaseModel):
    """The simulated effect of an executed action."""

    model_config = ConfigDict(extra="allow")
    metric: str
    before: float
    after: float
    improvement: float
    interval: tuple[float, float] | None = None


class RunRecord(BaseModel):
    """One CONTRACT.md section 3 record: what the agent saw, decided and did."""

    model_config = ConfigDict(extra="allow")
    scenario_id: str
    anomalous: bool
    anomalies: list[AnomalyRecord] = Field(default_factory=list)
    root_cause: list[Segment] = Field(default_factory=list)
    incident_kind: IncidentKind = "none"
    decision: Decision | None = None
    verdict: Verdict = "no_action"
    violations: list[Violation] = Field(default_factory=list)
    outcome: Outcome | None = None
    latency_ms: float = 0.0
    # Extensions of CONTRACT section 3 (docs/results.md): why a human must approve, and
    # the remedies guard would refuse (the reasoner left them out of its candidates).
    escalations: list[ApprovalReason] = Field(default_factory=list)
    refused: list[RefusedRemedy] = Field(default_factory=list)


def segment_key(segment: Segment) -> tuple[tuple[str, str], ...]:
    """A hashable, order-independent key for a segment."""
    return tuple(sorted(segment.items()))
