"""What an action is: its parameters, limits, simulated effect, playbook and candidates.

Each action is one module of this package defining `ACTION = ActionSpec(...)`, listed in
`registry.ACTION_MODULES`. The catalogue imports nothing from the contract: the contract
validates action names and decisions against the registry, so the catalogue sits below
it, with its field types from tools/fields.py. What an estimator or a candidate builder
reads is described here as protocols (`Snapshot`, `Limits`) and plain data (`Incident`),
which the simulator and the reasoner fill in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field

from tools.fields import (
    ClosedModel,
    ProcessorInfo,
    RecentChange,
    RiskLevel,
    Segment,
    SegmentField,
    Severity,
    format_segment,
)
from tools.incidents.spec import QUIET

# The action that changes nothing (CONTRACT.md section 4): guard always lets it through.
NO_ACTION = "no_action"

P = TypeVar("P", bound=BaseModel)
M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------------------------------
# Limits


@dataclass(frozen=True)
class ActionLimit:
    """A hard limit on an action's parameters, set under `[guard]` in payops.toml by `name`.

    `bound` says which way is tighter: a `ceiling` may be configured lower, a `floor`
    higher, never the other way (`hard` is the loosest value allowed). An `integer` limit
    is rounded towards tighter when configured.
    """

    name: str
    hard: float
    bound: Literal["ceiling", "floor"]
    doc: str
    integer: bool = False


class Limits(Protocol):
    """The limits a run enforces, as an action reads them (`GuardLimits` is one)."""

    def of(self, limit: ActionLimit) -> float:
        """The effective value of `limit` (its hard value, or tighter)."""
        ...


# ---------------------------------------------------------------------------------------
# Simulation


class Route(Protocol):
    """One processor on a segment, current and baseline counts (`routes.RouteStats`)."""

    @property
    def attempts(self) -> int: ...
    @property
    def approved(self) -> int: ...
    @property
    def baseline_attempts(self) -> int: ...
    @property
    def baseline_approved(self) -> int: ...
    @property
    def success_rate(self) -> float: ...
    @property
    def baseline_success_rate(self) -> float: ...


class Snapshot(Route, Protocol):
    """An action's target segment in both windows (`routes.SegmentSnapshot`)."""

    @property
    def decline_codes(self) -> Mapping[str, int]: ...
    @property
    def three_ds_failed(self) -> int: ...
    @property
    def routes(self) -> Mapping[str, Route]: ...


@dataclass(frozen=True)
class Estimate:
    """The target segment's success rate after an action, its variance, and how."""

    after: float
    variance: float
    note: str
    fee_delta_bps: float | None = None


# (params, target segment's snapshot, the context's processors) -> estimate.
Estimator = Callable[[P, Snapshot, Mapping[str, ProcessorInfo]], Estimate]


# ---------------------------------------------------------------------------------------
# The reasoner's candidates


@dataclass(frozen=True)
class Playbook:
    """Which incident kinds an action answers, and where in each kind's playbook.

    `kinds` maps a kind to the action's position in its playbook (lower comes first, as
    a payment engineer reaches for it; DOMAIN.md). `otherwise` is the position for every
    other incident kind, including kinds registered later, or None to answer only
    `kinds`. No action answers `QUIET` unless it names it.
    """

    kinds: Mapping[str, int] = field(default_factory=dict)
    otherwise: int | None = None

    def position(self, kind: str) -> int | None:
        """Where the action stands in `kind`'s playbook, or None if it does not answer it."""
        if kind in self.kinds:
            return self.kinds[kind]
        return None if kind == QUIET else self.otherwise


@dataclass(frozen=True)
class Incident:
    """What a candidate builder knows about the incident, filled in by the reasoner.

    `segment` is the primary root cause (`{}` when none was localized); `moved_codes` the
    decline codes that moved on it; `suspect_changes` the recent changes on or around it
    that went live shortly before the anomaly. `best_route()` is the healthy processor
    with the best current success rate on the segment, other than the root cause's
    `processor`, with enough current attempts there to trust it (None if there is none,
    or the root cause names no processor). `limits` are the run's effective limits: a
    candidate stays inside them, so tightening a limit changes the candidate rather than
    losing it to guard.
    """

    kind: str
    segment: Segment
    severity: Severity
    moved_codes: tuple[str, ...]
    suspect_changes: tuple[RecentChange, ...]
    best_route: Callable[[], str | None]
    limits: Limits

    @property
    def processor(self) -> str | None:
        """The processor the root cause sits on, if it names one."""
        return self.segment.get("processor")

    def moves(self, params: type[M], **more: Any) -> list[M]:
        """A move of traffic off the root cause's processor to its best healthy route:
        `params` with `segment`, `from_processor`, `to_processor` and `more`; none when
        the root cause has no processor or no route is fit to take its traffic."""
        source, target = self.processor, self.best_route()
        if source is None or target is None:
            return []
        move = {"segment": self.segment, "from_processor": source, "to_processor": target}
        return [params.model_validate({**move, **more})]

    def ttl_minutes(self, limit: ActionLimit, wanted: int) -> int:
        """`wanted` minutes, or fewer where the run's `limit` is tighter (0: it forbids)."""
        return int(min(wanted, self.limits.of(limit)))

    @property
    def where(self) -> str:
        """The root-cause segment, for text (`processor=acq_a`, or `all traffic`)."""
        return format_segment(self.segment)


# An incident -> the params of each candidate the action offers for it (none: not here).
CandidateBuilder = Callable[[Incident], list[P]]


# ---------------------------------------------------------------------------------------
# The spec


class TimedSegmentParams(ClosedModel):
    """The params of a policy set on a segment until a TTL passes (force_3ds, relax_3ds,
    disable_payment_method)."""

    segment: SegmentField
    ttl_minutes: int = Field(gt=0, description="integer > 0")


def segment_param(params: Mapping[str, Any]) -> Segment:
    """The `segment` parameter of an action's params ({} when it has none)."""
    seg = params.get("segment")
    if isinstance(seg, dict):
        return {str(k): str(v) for k, v in seg.items()}
    return {}


@dataclass(frozen=True)
class ActionSpec(Generic[P]):
    """One action of the catalogue (CONTRACT.md section 4) and everything payops knows of it.

    - `params`: the parameter model a decision's params validate against; fields typed
      with tools/fields.py's `Processor`, `MerchantId`, `RuleName`, `SegmentField` or a
      `Names` marker are checked against the evidence (a model's answer) or the data (a
      chat proposal).
    - `risk`: the default risk; guard may raise it, never lower it. `passive`: it changes
      nothing in the payment flow (exempt from the kill switch, cooldowns and the hourly
      cap). `description`: what it does, for models (the prompts' action table).
    - `min_evidence`: attempts behind the anomaly it acts on, at least (configurable
      higher under `[guard.min_evidence]`). `limits`: its own hard limits; `ttl` the one
      on its `ttl_minutes` parameter (guard's `ttl_limit` rule checks it).
    - `estimate`: the simulator's estimate of its effect on the target segment.
    - `playbook` and `candidates`: the incident kinds it answers, and the candidates it
      offers the reasoner for an incident (None: the reasoner never proposes it).
    - `target`: the segment it applies to, from its params. `key_params`: its params as
      the idempotency key sees them (two spellings of one action must give one key).
    """

    name: str
    params: type[P]
    risk: RiskLevel
    description: str
    estimate: Estimator[P]
    passive: bool = False
    min_evidence: int = 0
    limits: tuple[ActionLimit, ...] = ()
    ttl: ActionLimit | None = None
    playbook: Playbook = field(default_factory=Playbook)
    candidates: CandidateBuilder[P] | None = None
    target: Callable[[Mapping[str, Any]], Segment] = segment_param
    key_params: Callable[[Mapping[str, Any]], dict[str, Any]] = dict

    @property
    def all_limits(self) -> tuple[ActionLimit, ...]:
        """Its limits, the TTL ceiling included."""
        if self.ttl is None or self.ttl in self.limits:
            return self.limits
        return (*self.limits, self.ttl)
