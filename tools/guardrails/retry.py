"""Rules on cascading retries (enable_retry): which declines may be retried, and where.

Codes are compared in their canonical spelling (tools/decline_codes.py), so `4`, ` 04`
and `004` are all Visa 04, and a code payops does not know is never retried.
"""

from __future__ import annotations

from tools.actions.enable_retry import MAX_FAILED_3DS_SHARE, EnableRetryParams
from tools.decline_codes import (
    AUTHENTICATION_CODES,
    INSUFFICIENT_FUNDS,
    canonical_code,
    code_class,
    may_retry,
)
from tools.guardrails.base import Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits
from tools.identifiers import same_identifier


def _retry(inp: GuardInput) -> EnableRetryParams | None:
    p = inp.params
    return p if isinstance(p, EnableRetryParams) else None


def _codes(p: EnableRetryParams) -> set[str]:
    return {canonical_code(c) for c in p.decline_codes}


def retry_never_codes(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Retry only codes known to be retryable: never Visa category 1 or 3, MAC 03/21,
    fraud declines, or a code payops does not know."""
    p = _retry(inp)
    if p is None:
        return []
    # Authentication codes are reported once, by retry_after_failed_3ds.
    refused = sorted(c for c in _codes(p) if not may_retry(c) and c not in AUTHENTICATION_CODES)
    found: list[Finding] = []
    for cls, why in _REFUSED.items():
        codes = [c for c in refused if code_class(c) == cls]
        if codes:
            found += violation("retry_never_codes", f"codes {', '.join(codes)} {why}")
    return found


# Why a code of each non-retryable class is refused.
_REFUSED = {
    "hard": "must never be retried (issuer final)",
    "fraud": "are fraud declines; a retry would bypass fraud screening",
    "other": "are not known decline codes; an unknown code is never retried",
}


def retry_no_cross_processor_51(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Insufficient funds (51) fails on every processor: no cross-processor retry."""
    p = _retry(inp)
    if p is None or p.backup_processor is None or INSUFFICIENT_FUNDS not in _codes(p):
        return []
    pinned = next((v for k, v in p.segment.items() if same_identifier(k, "processor")), None)
    if pinned is not None and same_identifier(p.backup_processor, pinned):
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
    auth = sorted(_codes(p) & AUTHENTICATION_CODES)
    if auth:
        return violation(
            "retry_after_failed_3ds",
            f"authentication failures ({', '.join(auth)}) cannot be retried",
        )
    snap, most = inp.snapshot, limits.of(MAX_FAILED_3DS_SHARE)
    if snap.failures > 0 and snap.three_ds_failed / snap.failures > most:
        return violation(
            "retry_after_failed_3ds",
            f"{snap.three_ds_failed} of {snap.failures} failures on the segment are failed 3DS "
            f"(> {most:.0%}); retrying them bypasses authentication",
        )
    return []
