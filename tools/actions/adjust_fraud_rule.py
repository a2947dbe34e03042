"""Put a merchant's fraud rule in shadow mode, disable it, or change its threshold.

For a fraud rule that declines good shoppers: shadow mode first (the rule scores but does
not decline), so its effect is seen before it is disabled (guard's
`fraud_rule_shadow_first`). Fraud exposure changes: a human approves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import ActionSpec, Estimate, Incident, Playbook, Snapshot
from tools.change_kinds import is_fraud_rule_change
from tools.fields import ClosedModel, MerchantId, ProcessorInfo, RuleName, Segment

# Assumption where the data cannot tell (an order-of-magnitude figure): share of
# fraud-rule declines a re-thresholded (not shadowed or disabled) rule releases.
THRESHOLD_RELEASE = 0.5
# The rule the reasoner names when no recent change says which one misfired.
UNKNOWN_RULE = "unknown"


class AdjustFraudRuleParams(ClosedModel):
    merchant_id: MerchantId
    rule: RuleName
    mode: Literal["shadow", "disable", "threshold"] = Field(
        description="`shadow` | `disable` | `threshold`"
    )
    value: float | None = Field(default=None, description="optional number")


def estimate(
    p: AdjustFraudRuleParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The rule's declines released: all of them in shadow or disabled, some re-thresholded."""
    release = THRESHOLD_RELEASE if p.mode == "threshold" else 1.0
    return estimates.release_fraud_declines(snap, release, f"rule {p.rule} to {p.mode}")


def candidates(incident: Incident) -> list[AdjustFraudRuleParams]:
    """Shadow the fraud rule that changed on the merchant just before the incident."""
    merchant = incident.segment.get("merchant_id")
    if merchant is None:
        return []
    rule = next(
        (c.version or c.kind for c in incident.suspect_changes if is_fraud_rule_change(c.kind)),
        UNKNOWN_RULE,
    )
    return [AdjustFraudRuleParams(merchant_id=merchant, rule=rule, mode="shadow")]


def target(params: Mapping[str, Any]) -> Segment:
    """The merchant whose rule changes."""
    merchant = params.get("merchant_id")
    return {} if merchant is None else {"merchant_id": str(merchant)}


ACTION = ActionSpec(
    name="adjust_fraud_rule",
    params=AdjustFraudRuleParams,
    risk="high",
    description="change a merchant's fraud rule: `shadow` (scores, never declines), "
    "`disable`, or `threshold` (set to `value`)",
    estimate=estimate,
    min_evidence=100,
    playbook=Playbook(kinds={"fraud_rule_misfire": 1}),
    candidates=candidates,
    target=target,
)
