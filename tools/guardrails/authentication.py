"""Rules on 3-D Secure: where it may be relaxed and where forcing it helps."""

from __future__ import annotations

from tools.actions.force_3ds import Force3dsParams
from tools.actions.relax_3ds import Relax3dsParams
from tools.actions.rollback_config import RollbackConfigParams
from tools.change_kinds import change_class
from tools.contract import Segment
from tools.decline_codes import AUTHENTICATION_REQUIRED, count_codes
from tools.guardrails.base import Escalation, Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits
from tools.identifiers import normalize_identifier, same_identifier

# Strong customer authentication (PSD2) applies to issuers in the EU, the EEA and the UK.
SCA_COUNTRIES = frozenset(
    {
        # EU
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        # EEA outside the EU
        "IS", "LI", "NO",
        # United Kingdom (GB is the ISO code; UK its reserved alias)
        "GB", "UK",
    }
)  # fmt: skip


def sca_may_apply(segment: Segment) -> str | None:
    """Why strong customer authentication may apply to `segment`, or None if it cannot."""
    country = next((v for k, v in segment.items() if same_identifier(k, "issuer_country")), None)
    if country is None:
        return (
            "segment has no issuer_country, so strong customer authentication cannot be "
            "ruled out"
        )
    if normalize_identifier(country).upper() in SCA_COUNTRIES:
        return f"issuer_country {country} is under strong customer authentication"
    return None


def relax_3ds_sca(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never relax 3DS where strong customer authentication may apply (EU/EEA/UK)."""
    p = inp.params
    if not isinstance(p, Relax3dsParams):
        return []
    reason = sca_may_apply(p.segment)
    return [] if reason is None else violation("relax_3ds_sca", reason)


def rollback_3ds_sca(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Rolling back a 3DS-policy change may relax authentication: never where SCA may apply,
    and elsewhere only with a human."""
    p = inp.params
    if not isinstance(p, RollbackConfigParams) or change_class(p.change.kind) != "three_ds_policy":
        return []
    reason = sca_may_apply(p.change.target)
    if reason is not None:
        return violation(
            "rollback_3ds_sca", f"rolling back 3DS policy change {p.change.kind}: {reason}"
        )
    return [
        Escalation(
            "rollback_3ds_sca",
            f"rolling back 3DS policy change {p.change.kind} changes who is authenticated",
        )
    ]


def force_3ds_needs_1a(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Force 3DS only where step-up helps: the segment is declined with 1A."""
    if not isinstance(inp.params, Force3dsParams):
        return []
    if count_codes(inp.snapshot.decline_codes, [AUTHENTICATION_REQUIRED]) == 0:
        return violation(
            "force_3ds_needs_1a",
            "no 1A (authentication required) declines on the segment; step-up would only "
            "add friction",
        )
    return []
