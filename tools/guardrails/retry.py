"""Rules on cascading retries (enable_retry): which declines may be retried, and where."""

from __future__ import annotations

from tools.contract import EnableRetryParams
from tools.decline_codes import (
    AUTHENTICATION_CODES,
    CATEGORY_3_CODES,
    INSUFFICIENT_FUNDS,
    never_retry,
)
from tools.guardrails.base import Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits


def _retry(inp: GuardInput) -> EnableRetryParams | None:
    p = inp.params
    return p if isinstance(p, EnableRetryParams) else None


def retry_never_codes(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never retry Visa category 1 or 3 codes or Mastercard advice codes 03/21."""
    p = _retry(inp)
    if p is None:
        return []
    # Category 3 needs the data fixed first, so a retry as is fails again. Authentication
    # codes are reported once, by retry_after_failed_3ds.
    bad = sorted(
        c
        for c in set(p.decline_codes)
        if (never_retry(c) or c in CATEGORY_3_CODES) and c not in AUTHENTICATION_CODES
    )
    if bad:
        return violation(
            "retry_never_codes", f"codes {', '.join(bad)} must never be retried (issuer final)"
        )
    return []


def retry_no_cross_processor_51(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Insufficient funds (51) fails on every processor: no cross-processor retry."""
    p = _retry(inp)
    if p is None or p.backup_processor is None or INSUFFICIENT_FUNDS not in p.decline_codes:
        return []
    if p.backup_processor == p.segment.get("processor"):
        return []  # same-processor retry, not a cascade
    return violation(
        "retry_no_cross_processor_51",
        f"51 (insufficient funds) would be retried on {p.backup_processor}; it fails there too",
    )


def retry_after_failed_3ds(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """No retry after failed authentication: auth codes listed, or mostly failed-3DS failures."""
    p = _retry(inp)
    if p is None:
        return []
    auth = sorted(set(p.decline_codes) & AUTHENTICATION_CODES)
    if auth:
        return violation(
            "retry_after_failed_3ds",
            f"authentication failures ({', '.join(auth)}) cannot be retried",
        )
    snap = inp.snapshot
    if snap.failures > 0 and snap.three_ds_failed / snap.failures > limits.max_failed_3ds_share:
        return violation(
            "retry_after_failed_3ds",
            f"{snap.three_ds_failed} of {snap.failures} failures on the segment are failed 3DS "
            f"(> {limits.max_failed_3ds_share:.0%}); retrying them bypasses authentication",
        )
    return []
