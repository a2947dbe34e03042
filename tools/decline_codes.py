"""Decline-code classes from DOMAIN.md, the one place payops keeps them.

Three classes are enough for reasoning: technical (retry now on another route), soft
(retry later) and hard (never retry as is).

Codes are compared by meaning: `canonical_code` is the one spelling of a code, and every
comparison of codes (guard, reasoner, simulator, snapshots of the data) goes through it,
so `4`, `04` and ` 004` are one code, `r0` is `R0` and `MAC 03` is `MAC03`. A code payops
does not know is never retried (docs/identifiers.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
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

# `MAC 03`, `mac-3`, `Merchant Advice Code 21`: a Mastercard merchant advice code.
_MAC = re.compile(r"(?:mac|merchant\s*advice\s*code)[\s_\-:#]*(\d{1,2})", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-]+")


def canonical_code(code: str) -> str:
    """The one spelling of a decline or error code, for every comparison of codes.

    - NFKC, and whitespace at the ends removed (` 41` is `41`, full-width digits are digits);
    - numeric network codes as two digits at least (`4` -> `04`, `057` -> `57`);
    - Mastercard merchant advice codes as `MAC` and two digits (`MAC 03`, `mac3` -> `MAC03`);
    - other two-character network codes upper case (`r0` -> `R0`, `1a` -> `1A`);
    - processor codes lower case, with spaces and hyphens as `_`
      (`Processing Error` -> `processing_error`).
    """
    text = unicodedata.normalize("NFKC", code).strip()
    if text.isdigit():
        return f"{int(text):02d}"
    mac = _MAC.fullmatch(text)
    if mac is not None:
        return f"MAC{int(mac.group(1)):02d}"
    if len(text) == 2 and text.isalnum():
        return text.upper()
    return _SEPARATORS.sub("_", text.casefold())


def canonical_codes(codes: Iterable[str]) -> list[str]:
    """The canonical spellings of `codes`, each once, in their first order."""
    return list(dict.fromkeys(canonical_code(c) for c in codes))


def count_codes(counts: Mapping[str, int], codes: Iterable[str]) -> int:
    """Attempts in `counts` (code -> attempts, any spelling) whose code is one of `codes`."""
    wanted = {canonical_code(c) for c in codes}
    return sum(n for code, n in counts.items() if canonical_code(code) in wanted)


def code_class(code: str) -> CodeClass:
    """Classify a decline or error code (any spelling); `other` when payops does not know it."""
    c = canonical_code(code)
    if c in TECHNICAL_CODES:
        return "technical"
    if c in FRAUD_CODES:
        return "fraud"
    if c in AUTHENTICATION_CODES:
        return "authentication"
    if c in SOFT_CODES:
        return "soft"
    if c in CATEGORY_1_CODES or c in CATEGORY_3_CODES or c in NEVER_RETRY_MAC:
        return "hard"
    return "other"


def is_retryable_now(code: str) -> bool:
    """A code worth retrying immediately on another route."""
    return code_class(code) == "technical"


def may_retry(code: str) -> bool:
    """A code payops knows to be retryable (technical or soft); unknown codes are not."""
    return code_class(code) in ("technical", "soft")


def never_retry(code: str) -> bool:
    """A code that must never be retried (category 1 or a forbidding merchant advice code)."""
    c = canonical_code(code)
    return c in CATEGORY_1_CODES or c in NEVER_RETRY_MAC
