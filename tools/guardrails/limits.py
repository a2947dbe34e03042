"""Every limit the guard enforces: the global ones here, each action's in its module.

`GuardLimits` holds the limits a run uses. Its defaults are the sane hard limits of
DOMAIN.md, and they are also the loosest values allowed: `HARD_CEILINGS` (for `max_*`
limits) and `HARD_FLOORS` (for `min_*` limits) are checked when a `GuardLimits` is built,
and so are the actions' own limits (`ActionSpec.limits`, `ActionSpec.min_evidence` in
tools/actions/), so no code path, configuration or model output can loosen them. Users
tighten limits in payops.toml under `[guard]` (`GuardConfig`), an action's by its limit's
name (`max_shift_step_pp = 30`); `effective_limits` clamps a looser setting back to the
hard value and logs that it did.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from tools import actions
from tools.actions import ActionLimit
from tools.contract import ActionName

log = logging.getLogger(__name__)

KILL_SWITCH_ENV: Final = "PAYOPS_KILL_SWITCH"

# Without processors in the context, a processor whose success rate on a segment fell this
# much from its own baseline, with a one-sided p-value below DATA_HEALTH_P_VALUE, is not
# healthy for that segment (guardrails.base.unhealthy_reason). Detection's default bars.
DATA_HEALTH_MAX_DROP_PP: Final = 3.0
DATA_HEALTH_P_VALUE: Final = 0.01

# Upper limits: a configured value may be lower (tighter), never higher.
HARD_CEILINGS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "max_actions_per_hour": 6,  # actions (other than notify/no_action) per rolling hour
        "max_affected_share": 0.30,  # above this share of all attempts a human approves
        "max_change_age_minutes": 180,  # a rollback undoes a change at most 3 h before the drop
    }
)

# Lower limits: a configured value may be higher (tighter), never lower.
HARD_FLOORS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "min_confidence": 0.6,
        "min_target_route_attempts": 30,  # evidence that the target is better on the segment
        "cooldown_minutes": 15,  # one active action per segment
        "notify_dedup_minutes": 30,  # one page per incident per half hour
    }
)


def _evidence_floors() -> dict[str, int]:
    return {spec.name: spec.min_evidence for spec in actions.actions()}


def _action_hard_limits() -> dict[str, float]:
    return {name: limit.hard for name, limit in actions.limits().items()}


def _looser(limit: ActionLimit, value: float) -> bool:
    return value > limit.hard if limit.bound == "ceiling" else value < limit.hard


class GuardLimits(BaseModel):
    """The limits one run enforces; never looser than the hard ceilings and floors.

    `min_evidence` and `action_limits` hold the actions' own limits, by action and by
    limit name; an action registered after these limits were built is held to its hard
    values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kill_switch: bool = False
    min_confidence: float = Field(default=HARD_FLOORS["min_confidence"], le=1.0)
    min_evidence: dict[ActionName, int] = Field(default_factory=_evidence_floors)
    action_limits: dict[str, float] = Field(default_factory=_action_hard_limits)
    min_target_route_attempts: int = int(HARD_FLOORS["min_target_route_attempts"])
    cooldown_minutes: float = HARD_FLOORS["cooldown_minutes"]
    notify_dedup_minutes: float = HARD_FLOORS["notify_dedup_minutes"]
    max_actions_per_hour: int = Field(default=int(HARD_CEILINGS["max_actions_per_hour"]), ge=0)
    max_affected_share: float = Field(default=HARD_CEILINGS["max_affected_share"], ge=0)
    max_change_age_minutes: float = Field(default=HARD_CEILINGS["max_change_age_minutes"], gt=0)

    @model_validator(mode="after")
    def _never_looser_than_hard(self) -> GuardLimits:
        values = self.model_dump()
        for name, ceiling in HARD_CEILINGS.items():
            if values[name] > ceiling:
                raise ValueError(f"{name}={values[name]} is above its hard ceiling {ceiling}")
        for name, floor in HARD_FLOORS.items():
            if values[name] < floor:
                raise ValueError(f"{name}={values[name]} is below its hard floor {floor}")
        declared = actions.limits()
        for name, value in self.action_limits.items():
            limit = declared.get(name)
            if limit is None:
                raise ValueError(f"{name} is not a limit of any registered action")
            if value < 0 or _looser(limit, value):
                hard = f"its hard {limit.bound} {limit.hard:g}"
                raise ValueError(f"{name}={value:g} is looser than {hard}")
        for action, floor_n in _evidence_floors().items():
            if self.min_evidence.get(action, floor_n) < floor_n:
                raise ValueError(f"min_evidence.{action} is below its hard floor {floor_n}")
        return self

    def evidence_required(self, action: str) -> int:
        """Minimum attempts behind the anomaly before `action` may run."""
        return self.min_evidence.get(action, actions.get(action).min_evidence)

    def of(self, limit: ActionLimit) -> float:
        """The value this run enforces for an action's `limit` (whole for an integer one)."""
        value = self.action_limits.get(limit.name, limit.hard)
        return int(value) if limit.integer else value


class GuardConfig(BaseModel):
    """`[guard]` in payops.toml: limits a user tightens. Unset fields keep the defaults.

    Besides the fields below, it takes every registered action's limits by name
    (`max_shift_step_pp = 30`, `max_failover_ttl_minutes = 60`, ...; tools/actions/).
    A value looser than the hard limit is clamped to it (see `effective_limits`).
    """

    model_config = ConfigDict(extra="allow")
    # The actions' limits, by name: non-negative numbers (0 forbids what the limit bounds).
    __pydantic_extra__: dict[str, Annotated[float, Field(ge=0)]] = Field(init=False)

    kill_switch: bool = Field(
        default=False, description=f"refuse every action but a page (also {KILL_SWITCH_ENV}=1)"
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="least confidence of a decision that acts"
    )
    min_evidence: dict[ActionName, int] = Field(
        default_factory=dict,
        description="least current attempts behind the anomaly, per action",
    )
    min_target_route_attempts: int | None = Field(
        default=None, ge=0, description="current attempts the target needs on the segment"
    )
    cooldown_minutes: float | None = Field(
        default=None, ge=0, description="minutes between two actions on one segment"
    )
    notify_dedup_minutes: float | None = Field(
        default=None, ge=0, description="minutes between two pages about one incident"
    )
    max_actions_per_hour: int | None = Field(
        default=None, ge=0, description="actions (pages aside) in a rolling hour"
    )
    max_affected_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of all attempts an action may touch before a human approves",
    )
    max_change_age_minutes: float | None = Field(
        default=None, gt=0, description="oldest change (before the anomaly) a rollback undoes"
    )

    @model_validator(mode="before")
    @classmethod
    def _only_known_settings(cls, data: Any) -> Any:
        """Refuse a setting that is neither a field nor a registered action's limit, as a
        closed model refuses an extra input."""
        if isinstance(data, Mapping):
            known = {*cls.model_fields, *actions.limits()}
            unknown = [
                InitErrorDetails(type="extra_forbidden", loc=(name,), input=value)
                for name, value in data.items()
                if name not in known
            ]
            if unknown:
                raise ValidationError.from_exception_data(cls.__name__, unknown)
        return data

    def action_limits(self) -> dict[str, float]:
        """The actions' limits this configuration sets, by name."""
        return dict(self.model_extra or {})


def kill_switch_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """True when `PAYOPS_KILL_SWITCH` is set to 1/true/yes/on."""
    env = os.environ if environ is None else environ
    return env.get(KILL_SWITCH_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _clamp(name: str, limit: ActionLimit, value: float) -> float:
    """`value` clamped to `limit`'s hard value; an integer limit rounded the tighter way."""
    hard = min(value, limit.hard) if limit.bound == "ceiling" else max(value, limit.hard)
    kept = _clamped(name, value, hard)
    if not limit.integer:
        return kept
    return float(math.floor(kept) if limit.bound == "ceiling" else math.ceil(kept))


def effective_limits(
    config: GuardConfig | None = None, environ: Mapping[str, str] | None = None
) -> GuardLimits:
    """The limits a run enforces: the defaults, tightened (never loosened) by `config`.

    The kill switch is engaged by `config.kill_switch` or by `PAYOPS_KILL_SWITCH=1`.
    """
    config = config or GuardConfig()
    values = GuardLimits().model_dump()
    for name, value in config.model_dump(exclude_none=True).items():
        if name in HARD_CEILINGS:
            values[name] = _clamped(name, value, min(value, HARD_CEILINGS[name]))
        elif name in HARD_FLOORS:
            values[name] = _clamped(name, value, max(value, HARD_FLOORS[name]))
    declared = actions.limits()
    for name, value in config.action_limits().items():
        values["action_limits"][name] = _clamp(name, declared[name], value)
    for action, n in config.min_evidence.items():
        floor_n = actions.get(action).min_evidence
        values["min_evidence"][action] = _clamped(f"min_evidence.{action}", n, max(n, floor_n))
    values["kill_switch"] = config.kill_switch or kill_switch_from_env(environ)
    return GuardLimits.model_validate(values)


def _clamped(name: str, asked: float, kept: float) -> float:
    if kept != asked:
        log.warning("guard.%s = %s would loosen a hard limit; using %s", name, asked, kept)
    return kept
