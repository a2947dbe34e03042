"""Every limit the guard enforces, in one place.

`GuardLimits` holds the limits a run uses. Its defaults are the sane hard limits of
DOMAIN.md, and they are also the loosest values allowed: `HARD_CEILINGS` (for `max_*`
limits) and `HARD_FLOORS` (for `min_*` limits) are checked when a `GuardLimits` is built,
so no code path, configuration or model output can loosen them. Users tighten limits in
payops.toml under `[guard]` (`GuardConfig`); `effective_limits` clamps a looser setting back
to the hard value and logs that it did.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.contract import ActionName

log = logging.getLogger(__name__)

KILL_SWITCH_ENV: Final = "PAYOPS_KILL_SWITCH"

# Share of a failed-over segment that keeps probing the failed processor so its recovery
# is seen (DOMAIN.md: 1-5% probe traffic stays). The simulator models failover with it.
FAILOVER_PROBE_PCT: Final = 5.0

# Without processors in the context, a processor whose success rate on a segment fell this
# much from its own baseline, with a one-sided p-value below DATA_HEALTH_P_VALUE, is not
# healthy for that segment (guardrails.base.unhealthy_reason). Detection's default bars.
DATA_HEALTH_MAX_DROP_PP: Final = 3.0
DATA_HEALTH_P_VALUE: Final = 0.01

# Upper limits: a configured value may be lower (tighter), never higher.
HARD_CEILINGS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "max_shift_step_pp": 50.0,  # one shift moves at most 50 pp of a segment
        "max_failover_ttl_minutes": 240,  # a failover auto-expires within 4 h
        "max_3ds_ttl_minutes": 240,  # force/relax 3DS auto-expire within 4 h
        "max_disable_ttl_minutes": 120,  # a disabled payment method returns within 2 h
        "max_retry_attempts": 2,  # original + one retry (DOMAIN.md: <= 2 attempts)
        "max_failed_3ds_share": 0.5,  # retries blocked when most failures are failed 3DS
        "max_actions_per_hour": 6,  # actions (other than notify/no_action) per rolling hour
        "max_affected_share": 0.30,  # above this share of all attempts a human approves
        "auto_rollback_drop_pp": 3.0,  # roll back when the target segment drops this much
        "max_change_age_minutes": 180,  # a rollback undoes a change at most 3 h before the drop
    }
)

# Lower limits: a configured value may be higher (tighter), never lower.
HARD_FLOORS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "min_confidence": 0.6,
        "min_source_exploration_pct": 5.0,  # a shift keeps >= 5% on the source to explore
        "min_target_route_attempts": 30,  # evidence that the target is better on the segment
        "cooldown_minutes": 15,  # one active action per segment
        "notify_dedup_minutes": 30,  # one page per incident per half hour
    }
)

# Minimum attempts behind the anomaly an action acts on, per action.
MIN_EVIDENCE_FLOORS: Final[Mapping[ActionName, int]] = MappingProxyType(
    {
        "no_action": 0,
        "notify_oncall": 0,
        "shift_traffic": 100,
        "failover_processor": 200,
        "enable_retry": 100,
        "force_3ds": 100,
        "relax_3ds": 200,
        "rollback_config": 100,
        "adjust_fraud_rule": 100,
        "disable_payment_method": 200,
    }
)


class GuardLimits(BaseModel):
    """The limits one run enforces; never looser than the hard ceilings and floors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kill_switch: bool = False
    min_confidence: float = Field(default=HARD_FLOORS["min_confidence"], le=1.0)
    min_evidence: dict[ActionName, int] = Field(default_factory=lambda: dict(MIN_EVIDENCE_FLOORS))
    max_shift_step_pp: float = Field(default=HARD_CEILINGS["max_shift_step_pp"], gt=0)
    min_source_exploration_pct: float = Field(
        default=HARD_FLOORS["min_source_exploration_pct"], lt=100
    )
    min_target_route_attempts: int = int(HARD_FLOORS["min_target_route_attempts"])
    max_failover_ttl_minutes: int = Field(
        default=int(HARD_CEILINGS["max_failover_ttl_minutes"]), gt=0
    )
    max_3ds_ttl_minutes: int = Field(default=int(HARD_CEILINGS["max_3ds_ttl_minutes"]), gt=0)
    max_disable_ttl_minutes: int = Field(
        default=int(HARD_CEILINGS["max_disable_ttl_minutes"]), gt=0
    )
    max_retry_attempts: int = Field(default=int(HARD_CEILINGS["max_retry_attempts"]), ge=1)
    max_failed_3ds_share: float = Field(default=HARD_CEILINGS["max_failed_3ds_share"], ge=0)
    cooldown_minutes: float = HARD_FLOORS["cooldown_minutes"]
    notify_dedup_minutes: float = HARD_FLOORS["notify_dedup_minutes"]
    max_actions_per_hour: int = Field(default=int(HARD_CEILINGS["max_actions_per_hour"]), ge=0)
    max_affected_share: float = Field(default=HARD_CEILINGS["max_affected_share"], ge=0)
    auto_rollback_drop_pp: float = Field(default=HARD_CEILINGS["auto_rollback_drop_pp"], gt=0)
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
        for action, floor_n in MIN_EVIDENCE_FLOORS.items():
            if self.min_evidence.get(action, floor_n) < floor_n:
                raise ValueError(f"min_evidence.{action} is below its hard floor {floor_n}")
        return self

    def evidence_required(self, action: ActionName) -> int:
        """Minimum attempts behind the anomaly before `action` may run."""
        return self.min_evidence.get(action, MIN_EVIDENCE_FLOORS[action])


class GuardConfig(BaseModel):
    """`[guard]` in payops.toml: limits a user tightens. Unset fields keep the defaults.

    A value looser than the hard limit is clamped to it (see `effective_limits`).
    """

    model_config = ConfigDict(extra="forbid")

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
    max_shift_step_pp: float | None = Field(
        default=None, gt=0, le=100, description="most of a segment one shift moves, pp"
    )
    min_source_exploration_pct: float | None = Field(
        default=None, ge=0, lt=100, description="share a shift keeps on the source, %"
    )
    min_target_route_attempts: int | None = Field(
        default=None, ge=0, description="current attempts the target needs on the segment"
    )
    max_failover_ttl_minutes: int | None = Field(
        default=None, gt=0, description="longest failover before it expires, minutes"
    )
    max_3ds_ttl_minutes: int | None = Field(
        default=None, gt=0, description="longest force/relax 3DS before it expires, minutes"
    )
    max_disable_ttl_minutes: int | None = Field(
        default=None, gt=0, description="longest a payment method stays disabled, minutes"
    )
    max_retry_attempts: int | None = Field(
        default=None, ge=1, description="attempts of one payment, the original included"
    )
    max_failed_3ds_share: float | None = Field(
        default=None, ge=0, le=1, description="no retry when failed 3DS exceed this share"
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
    auto_rollback_drop_pp: float | None = Field(
        default=None, gt=0, description="not used yet: payops does not roll back by itself"
    )
    max_change_age_minutes: float | None = Field(
        default=None, gt=0, description="oldest change (before the anomaly) a rollback undoes"
    )


def kill_switch_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """True when `PAYOPS_KILL_SWITCH` is set to 1/true/yes/on."""
    env = os.environ if environ is None else environ
    return env.get(KILL_SWITCH_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


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
    for action, n in config.min_evidence.items():
        floor_n = MIN_EVIDENCE_FLOORS[action]
        values["min_evidence"][action] = _clamped(f"min_evidence.{action}", n, max(n, floor_n))
    values["kill_switch"] = config.kill_switch or kill_switch_from_env(environ)
    return GuardLimits.model_validate(values)


def _clamped(name: str, asked: float, kept: float) -> float:
    if kept != asked:
        log.warning("guard.%s = %s would loosen a hard limit; using %s", name, asked, kept)
    return kept
