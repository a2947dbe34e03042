"""Do nothing: the change is benign, or there is no incident.

The answer to a quiet cycle and to a benign shift (a month-end wave of insufficient-funds
declines is the shoppers', not the payment stack's). Guard always lets it through.
"""

from __future__ import annotations

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import NO_ACTION, ActionSpec, Incident, Playbook
from tools.fields import ClosedModel, Note
from tools.incidents.spec import QUIET


class NoActionParams(ClosedModel):
    reason: Note = Field(default="", description="string")


def candidates(incident: Incident) -> list[NoActionParams]:
    """Doing nothing, with why."""
    if incident.kind == QUIET:
        return [NoActionParams(reason="no anomaly")]
    return [NoActionParams(reason=f"{incident.kind} at {incident.where}: no remedy applies")]


ACTION = ActionSpec(
    name=NO_ACTION,
    params=NoActionParams,
    risk="none",
    description="do nothing: the change is benign or there is no incident",
    estimate=estimates.passive,
    passive=True,
    playbook=Playbook(kinds={QUIET: 0, "benign_shift": 0}),
    candidates=candidates,
)
