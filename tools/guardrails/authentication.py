"""Rules on 3-D Secure: where it may be relaxed and where forcing it helps."""

from __future__ import annotations

from tools.contract import Force3dsParams, Relax3dsParams
from tools.decline_codes import AUTHENTICATION_REQUIRED
from tools.guardrails.base import Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits

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


def relax_3ds_sca(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never relax 3DS where strong customer authentication may apply (EU/EEA/UK)."""
    p = inp.params
    if not isinstance(p, Relax3dsParams):
        return []
    country = p.segment.get("issuer_country")
    if country is None:
        return violation(
            "relax_3ds_sca",
            "segment has no issuer_country, so strong customer authentication cannot be ruled out",
        )
    if country.upper() in SCA_COUNTRIES:
        return violation(
            "relax_3ds_sca", f"issuer_country {country} is under strong customer authentication"
        )
    return []


def force_3ds_needs_1a(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Force 3DS only where step-up helps: the segment is declined with 1A."""
    if not isinstance(inp.params, Force3dsParams):
        return []
    if inp.snapshot.decline_codes.get(AUTHENTICATION_REQUIRED, 0) == 0:
        return violation(
            "force_3ds_needs_1a",
            "no 1A (authentication required) declines on the segment; step-up would only "
            "add friction",
        )
    return []
