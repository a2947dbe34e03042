"""Undo a configuration or rule change that went live just before the incident.

For a change that broke something (a fraud rule, a checkout release): guard lets a rollback
undo only a listed change that touches the incident's segment, went live shortly before
the anomaly and preceded it; fraud rules and unknown change kinds need a human.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import ActionSpec, Estimate, Incident, Playbook, Snapshot
from tools.change_kinds import is_fraud_rule_change
from tools.fields import ClosedModel, Names, ProcessorInfo, RecentChange, Segment


class RollbackConfigParams(ClosedModel):
    change: Annotated[RecentChange, Names("change")] = Field(
        description="one item of `recent_changes`, copied exactly"
    )


def estimate(
    p: RollbackConfigParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The change taken as the cause: the segment returns to its baseline rate (a fraud
    rule's declines are released, up to the baseline)."""
    if is_fraud_rule_change(p.change.kind):
        return estimates.release_fraud_declines(snap, 1.0, f"rollback of {p.change.kind}")
    if snap.baseline_attempts == 0:
        return estimates.unchanged(snap, "no baseline for the segment")
    after = max(snap.success_rate, snap.baseline_success_rate)
    var = estimates.variance(snap.baseline_approved, snap.baseline_attempts)
    return Estimate(after, var, f"rollback of {p.change.kind} restores the baseline rate")


def candidates(incident: Incident) -> list[RollbackConfigParams]:
    """One rollback per suspect change."""
    return [RollbackConfigParams(change=change) for change in incident.suspect_changes]


def target(params: Mapping[str, Any]) -> Segment:
    """The segment the rolled-back change targeted."""
    change = params.get("change")
    found = change.get("target", {}) if isinstance(change, dict) else {}
    return {str(k): str(v) for k, v in found.items()}


ACTION = ActionSpec(
    name="rollback_config",
    params=RollbackConfigParams,
    risk="medium",
    description="undo one recent configuration or rule change",
    estimate=estimate,
    min_evidence=100,
    playbook=Playbook(kinds={"fraud_rule_misfire": 0, "checkout_integration_break": 0}),
    candidates=candidates,
    target=target,
)
