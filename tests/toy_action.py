"""A toy action, written the way a new action is added to tools/actions/.

Refresh expired cards through the card networks' account updaters and try them again:
the answer to an expired-card wave (tests/toy_incident_kind.py). Only the registry line
is missing, and tests/test_actions.py supplies it with `registered(ACTION)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.actions import estimates
from tools.actions.spec import (
    ActionLimit,
    ActionSpec,
    Estimate,
    Incident,
    Playbook,
    Snapshot,
    TimedSegmentParams,
)
from tools.fields import ProcessorInfo

EXPIRED_CARD = "54"
TTL = ActionLimit(
    "max_card_refresh_ttl_minutes", 120, "ceiling", "a refresh window closes in 2 h", integer=True
)
MAX_BATCH = ActionLimit(
    "max_card_refresh_batch", 5000, "ceiling", "cards refreshed at once without a human"
)
# Share of expired cards an account updater holds a new expiry date for.
UPDATER_HIT_RATE = 0.6
DEFAULT_TTL_MINUTES = 60


class RefreshCardCredentialsParams(TimedSegmentParams):
    """Where and for how long expired cards are refreshed."""


def estimate(
    p: RefreshCardCredentialsParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The expired-card declines the updater refreshes, approved at the approval rate."""
    n = snap.decline_codes.get(EXPIRED_CARD, 0)
    note = f"{n} expired-card declines, {UPDATER_HIT_RATE:.0%} refreshed by the updater"
    return estimates.recover(snap, n * UPDATER_HIT_RATE, note)


def candidates(incident: Incident) -> list[RefreshCardCredentialsParams]:
    """Refresh the root cause's expired cards for an hour, within the TTL."""
    ttl = incident.ttl_minutes(TTL, DEFAULT_TTL_MINUTES)
    if EXPIRED_CARD not in incident.moved_codes or not incident.segment or ttl < 1:
        return []
    return [RefreshCardCredentialsParams(segment=incident.segment, ttl_minutes=ttl)]


ACTION = ActionSpec(
    name="refresh_card_credentials",
    params=RefreshCardCredentialsParams,
    risk="medium",
    description="refresh the segment's expired cards through the account updaters and retry "
    "them until `ttl_minutes` pass",
    estimate=estimate,
    min_evidence=100,
    limits=(MAX_BATCH,),
    ttl=TTL,
    playbook=Playbook(kinds={"expired_card_wave": 0}),
    candidates=candidates,
)
