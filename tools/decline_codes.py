"""Decline-code classes from DOMAIN.md, the one place payops keeps them.

Three classes are enough for reasoning: technical (retry now on another route), soft
(retry later) and hard (never retry as is).
"""

from __future__ import annotations

from typing import Literal

CodeClass = Literal["technical", "soft", "hard", "fraud", "authentication", "other"]

# Retry now, on another route: gateway-side and issuer-unavailable failures.
TECHNICAL_CODES: frozenset[str] = frozenset(
    {"timeout", "processing_error", "91", "96", "5xx", "connection_error", "gateway_error"}
)
# Gateway-side failures (the processor, not the issuer): the technical codes without the
# issuer-unavailable 91 and 96.
GATEWAY_CODES: frozenset[str] = TECHNICAL_CODES - {"91", "96"}
# Visa category 2 (retry later) that are not technical, plus the generic soft decline 05.
SOFT_CODES: frozenset[str] = frozenset({"05", "19", "51", "59", "61", "65", "75", "86"})
# Visa category 1: never retry.
CATEGORY_1_CODES: frozenset[str] = frozenset(
    {"03", "04", "07", "12", "15", "41", "43", "46", "57", "62", "78", "93", "R0", "R1", "R3"}
)
# Visa category 3: fix the data first (1A = authentication required).
CATEGORY_3_CODES: frozenset[str] = frozenset({"14", "54", "55", "N7", "82", "1A"})
# Mastercard merchant advice codes that forbid retrying.
NEVER_RETRY_MAC: frozenset[str] = frozenset({"MAC03", "MAC21"})
FRAUD_CODES: frozenset[str] = frozenset({"frm_decline", "fraud", "risk_decline"})
AUTHENTICATION_CODES: frozenset[str] = frozenset(
    {"1A", "authentication_failed", "3ds_failed", "3ds_authentication_failed"}
)
INSUFFICIENT_FUNDS = "51"
# The issuer asks for cardholder authentication: a 3DS step-up can turn it into an approval.
AUTHENTICATION_REQUIRED = "1A"


def code_class(code: str) -> CodeClass:
    """Classify a decline or error code."""
    if code in TECHNICAL_CODES:
        return "technical"
    if code in FRAUD_CODES:
        return "fraud"
    if code in AUTHENTICATION_CODES:
        return "authentication"
    if code in SOFT_CODES:
        return "soft"
    if code in CATEGORY_1_CODES or code in CATEGORY_3_CODES or code in NEVER_RETRY_MAC:
        return "hard"
    return "other"


def is_retryable_now(code: str) -> bool:
    """A code worth retrying immediately on another route."""
    return code in TECHNICAL_CODES


def never_retry(code: str) -> bool:
    """A code that must never be retried (category 1 or a forbidding merchant advice code)."""
    return code in CATEGORY_1_CODES or code in NEVER_RETRY_MAC
