"""Pydantic models of the formats users depend on (shared/CONTRACT.md).

Every file payops reads or writes, and everything a model proposes, passes through one of
these models. Internal computation uses plain dataclasses; these are the boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

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

from tools import incidents

FORMAT_VERSION = 1

# A segment maps dimension -> value; an absent dimension means "any value".
Segment = dict[str, str]

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
# registry (tools/incidents/registry.py), in its order: a live view, so a kind registered
# later (a test's toy kind) is listed too.
INCIDENT_KINDS: Sequence[str] = incidents.NAMES


def _registered_kind(value: object) -> str:
    """Accept a registered incident kind's name; reject anything else as a Literal would."""
    if isinstance(value, str) and value in INCIDENT_KINDS:
        return value
    names = [repr(k) for k in INCIDENT_KINDS]
    expected = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


class _KindsJsonSchema:
    """JSON schema of an incident kind: a string enum of the registered names."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(INCIDENT_KINDS)}


# An incident kind's name. Validated against the registry when a model is validated (not
# when it is defined), with the error a Literal of the registered names would give.
IncidentKind = Annotated[str, PlainValidator(_registered_kind), _KindsJsonSchema()]

ActionName = Literal[
    "no_action",
    "notify_oncall",
    "shift_traffic",
    "failover_processor",
    "enable_retry",
    "force_3ds",
    "relax_3ds",
    "rollback_config",
    "adjust_fraud_rule",
    "disable_payment_method",
]
ACTION_NAMES: tuple[str, ...] = get_args(ActionName)

RiskLevel = Literal["none", "low", "medium", "high"]
RISK_ORDER: dict[str, int] = {"none": 0, "low": 1, "medium": 2, "high": 3}

Verdict = Literal["executed", "blocked", "needs_approval", "no_action"]
Severity = Literal["info", "warning", "critical"]


def utc(ts: datetime) -> datetime:
    """Return `ts` as an aware UTC datetime (naive values are taken to be UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    """Format a timestamp the way the contract writes them: `2026-03-01T10:15:02Z`."""
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


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


class ProcessorInfo(BaseModel):
    """What the scenario context says about one processor."""

    model_config = ConfigDict(extra="allow")
    fee_bps: float | None = None
    healthy: bool = True


class RecentChange(BaseModel):
    """A configuration or rule change that went live shortly before the incident."""

    model_config = ConfigDict(extra="allow")
    ts: datetime
    kind: str
    target: Segment = Field(default_factory=dict)
    version: str | None = None

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return utc(value)


# ---------------------------------------------------------------------------------------
# Action catalogue (CONTRACT.md section 4): one params model per action.


class NoActionParams(_Model):
    reason: str = ""


class NotifyOncallParams(_Model):
    severity: Severity = "warning"
    summary: str = ""


class ShiftTrafficParams(_Model):
    segment: Segment
    from_processor: str
    to_processor: str
    percent: float = Field(gt=0, le=100)


class FailoverProcessorParams(_Model):
    segment: Segment
    from_processor: str
    to_processor: str
    ttl_minutes: int = Field(gt=0)


class EnableRetryParams(_Model):
    segment: Segment
    decline_codes: list[str] = Field(min_length=1)
    max_attempts: int = Field(ge=1)
    backup_processor: str | None = None


class Force3dsParams(_Model):
    segment: Segment
    ttl_minutes: int = Field(gt=0)


class Relax3dsParams(_Model):
    segment: Segment
    ttl_minutes: int = Field(gt=0)


class RollbackConfigParams(_Model):
    change: RecentChange


class AdjustFraudRuleParams(_Model):
    merchant_id: str
    rule: str
    mode: Literal["shadow", "disable", "threshold"]
    value: float | None = None


class DisablePaymentMethodParams(_Model):
    segment: Segment
    ttl_minutes: int = Field(gt=0)


ACTION_PARAMS: dict[str, type[BaseModel]] = {
    "no_action": NoActionParams,
    "notify_oncall": NotifyOncallParams,
    "shift_traffic": ShiftTrafficParams,
    "failover_processor": FailoverProcessorParams,
    "enable_retry": EnableRetryParams,
    "force_3ds": Force3dsParams,
    "relax_3ds": Relax3dsParams,
    "rollback_config": RollbackConfigParams,
    "adjust_fraud_rule": AdjustFraudRuleParams,
    "disable_payment_method": DisablePaymentMethodParams,
}

DEFAULT_RISK: dict[str, RiskLevel] = {
    "no_action": "none",
    "notify_oncall": "none",
    "shift_traffic": "medium",
    "failover_processor": "high",
    "enable_retry": "medium",
    "force_3ds": "medium",
    "relax_3ds": "high",
    "rollback_config": "medium",
    "adjust_fraud_rule": "high",
    "disable_payment_method": "high",
}


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
    rationale: str = ""

    @model_validator(mode="after")
    def _check_params_and_risk(self) -> Decision:
        model = ACTION_PARAMS[self.action]
        self.params = model.model_validate(self.params).model_dump(mode="json", exclude_none=True)
        default = DEFAULT_RISK[self.action]
        if RISK_ORDER[self.risk] < RISK_ORDER[default]:
            self.risk = default
        return self

    def typed_params(self) -> BaseModel:
        """The params as their action's pydantic model."""
        return ACTION_PARAMS[self.action].model_validate(self.params)

    def target_segment(self) -> Segment:
        """The segment the action applies to ({} for actions that have none)."""
        seg = self.params.get("segment")
        if isinstance(seg, dict):
            return {str(k): str(v) for k, v in seg.items()}
        if self.action == "adjust_fraud_rule":
            return {"merchant_id": str(self.params["merchant_id"])}
        if self.action == "rollback_config":
            target = self.params.get("change", {}).get("target", {})
            return {str(k): str(v) for k, v in target.items()}
        return {}


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
    """Operational context of a scenario: processors, recent actions and recent changes."""

    model_config = ConfigDict(extra="allow")
    processors: dict[str, ProcessorInfo] = Field(default_factory=dict)
    recent_actions: list[RecentAction] = Field(default_factory=list)
    recent_changes: list[RecentChange] = Field(default_factory=list)


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


def segment_key(segment: Segment) -> tuple[tuple[str, str], ...]:
    """A hashable, order-independent key for a segment."""
    return tuple(sorted(segment.items()))


def format_segment(segment: Segment) -> str:
    """Human-readable form: `processor=acq_a, issuer_country=BR`, or `all traffic`."""
    if not segment:
        return "all traffic"
    return ", ".join(f"{k}={v}" for k, v in segment.items())
