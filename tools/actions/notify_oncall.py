"""Page the on-call engineer: the incident needs a person, or nothing payops can do fixes it.

It answers every incident kind, kinds registered later included: last in a playbook,
after the remedies payops can apply itself, and first where the fault lies with a party
payops cannot route around (an issuer, a card network, an issuer's 3DS server).
"""

from __future__ import annotations

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import ActionSpec, Incident, Playbook
from tools.fields import ClosedModel, Note, Severity

# Behind every remedy a kind's playbook lists (positions are small numbers).
LAST = 100


class NotifyOncallParams(ClosedModel):
    severity: Severity = Field(default="warning", description="`info` | `warning` | `critical`")
    summary: Note = Field(default="", description="string")


def candidates(incident: Incident) -> list[NotifyOncallParams]:
    """One page, at the incident's severity."""
    summary = f"{incident.kind} at {incident.where}"
    return [NotifyOncallParams(severity=incident.severity, summary=summary)]


ACTION = ActionSpec(
    name="notify_oncall",
    params=NotifyOncallParams,
    risk="none",
    description="page the on-call engineer with a summary; changes no traffic",
    estimate=estimates.passive,
    passive=True,
    playbook=Playbook(
        kinds={"issuer_outage": 0, "network_incident": 0, "three_ds_failure": 0},
        otherwise=LAST,
    ),
    candidates=candidates,
)
