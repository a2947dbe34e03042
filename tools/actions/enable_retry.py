"""Retry declined attempts once more, on the same route or a backup processor (cascading).

For technical failures (DOMAIN.md): timeouts and issuer-unavailable codes often succeed on
a second attempt. Never issuer-final or fraud declines, never 51 on another processor,
never after a failed 3DS authentication (guard's retry rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from tools.actions import estimates
from tools.actions.spec import ActionLimit, ActionSpec, Estimate, Incident, Playbook, Snapshot
from tools.decline_codes import is_retryable_now
from tools.fields import ClosedModel, DeclineCodes, Processor, ProcessorInfo, SegmentField

MAX_ATTEMPTS = ActionLimit(
    "max_retry_attempts", 2, "ceiling", "original + one retry (DOMAIN.md: <= 2)", integer=True
)
MAX_FAILED_3DS_SHARE = ActionLimit(
    "max_failed_3ds_share", 0.5, "ceiling", "no retries where most failures are failed 3DS"
)
# A retry needs a second attempt: this many in all, at least.
MIN_USEFUL_ATTEMPTS = 2


class EnableRetryParams(ClosedModel):
    segment: SegmentField
    # Canonical spellings (tools/decline_codes.py), each once: `4` and `04` are one code.
    decline_codes: DeclineCodes = Field(min_length=1, description="list of strings")
    max_attempts: int = Field(ge=1, description="integer >= 1")
    backup_processor: Processor | None = Field(default=None, description="optional")


def estimate(
    p: EnableRetryParams, snap: Snapshot, processors: Mapping[str, ProcessorInfo]
) -> Estimate:
    """The retryable failures recovered at the backup's (or the segment's) rate."""
    retries = p.max_attempts - 1
    if retries <= 0 or snap.attempts == 0:
        return estimates.unchanged(snap, "max_attempts 1 adds no retry")
    backup = snap.routes.get(p.backup_processor) if p.backup_processor else None
    if backup is not None and (backup.attempts + backup.baseline_attempts) > 0:
        rate, rate_var = estimates.route_rate(backup)
        where = p.backup_processor
    else:
        rate, rate_var = snap.success_rate, estimates.segment_variance(snap)
        where = "the same route"
    # Only technical failures recover on an immediate retry; 51 and the other issuer
    # declines fail again on any route, category-1 codes must not be retried at all.
    codes = sorted(set(p.decline_codes))
    recoverable = sum(snap.decline_codes.get(c, 0) for c in codes if is_retryable_now(c))
    share = recoverable / snap.attempts
    recovered = 1 - (1 - rate) ** retries
    slope = retries * (1 - rate) ** (retries - 1)
    after = snap.success_rate + share * recovered
    var = estimates.segment_variance(snap) + (share * slope) ** 2 * rate_var
    note = (
        f"{recoverable} technical failures ({', '.join(codes)}) retried up to {retries}x "
        f"on {where} at {rate:.1%}"
    )
    return Estimate(after, var, note)


def candidates(incident: Incident) -> list[EnableRetryParams]:
    """Retry the codes that moved and recover on a second attempt, on the best healthy
    route when the root cause sits on a processor; as many attempts as the limit allows,
    up to two."""
    codes = sorted(c for c in incident.moved_codes if is_retryable_now(c))
    attempts = int(min(MIN_USEFUL_ATTEMPTS, incident.limits.of(MAX_ATTEMPTS)))
    if not codes or attempts < MIN_USEFUL_ATTEMPTS:
        return []  # nothing retryable moved, or retries are configured away
    return [
        EnableRetryParams(
            segment=incident.segment,
            decline_codes=codes,
            max_attempts=attempts,
            backup_processor=incident.best_route(),
        )
    ]


def key_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The codes are a set: their order must not make a different idempotency key."""
    return {**params, "decline_codes": sorted(set(params["decline_codes"]))}


ACTION = ActionSpec(
    name="enable_retry",
    params=EnableRetryParams,
    risk="medium",
    description="retry the segment's attempts declined with `decline_codes`, up to "
    "`max_attempts` in all, on `backup_processor` when given",
    estimate=estimate,
    min_evidence=100,
    limits=(MAX_ATTEMPTS, MAX_FAILED_3DS_SHARE),
    playbook=Playbook(
        kinds={
            "processor_outage": 2,
            "processor_degradation": 1,
            "latency_spike": 1,
            "issuer_outage": 1,
            "network_incident": 1,
        }
    ),
    candidates=candidates,
    key_params=key_params,
)
