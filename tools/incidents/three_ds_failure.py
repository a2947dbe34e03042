"""The 3-D Secure access control server fails: challenged attempts end declined 1A.

Recognised by what failed: authentication codes lead the moved declines, or the 3DS
failure rate rose. Relaxing 3DS is a remedy only where strong customer authentication
does not apply; under SCA (EU/UK) it is forbidden.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import IncidentKindSpec, Injection, Recognition, Signature, World

# Authentication codes carrying this share of the moved failure mass...
AUTHENTICATION_LEAD = 0.4
# ...or the 3DS failure rate rising by this much (a fraction) name the kind.
FAILURE_RATE_RISE = 0.1
# A country needs this share of card attempts challenged for an ACS failure to matter.
MIN_CHALLENGE_SHARE = 0.15


def recognise(sig: Signature) -> Recognition | None:
    """A rate drop led by authentication declines or a 3DS failure rise."""
    if not sig.failing:
        return None
    if sig.authentication >= AUTHENTICATION_LEAD or sig.three_ds_failure_rise >= FAILURE_RATE_RISE:
        return Recognition(CONFIDENCE.clean)
    return None


def eligible(world: World, segment: Mapping[str, str]) -> bool:
    """Card traffic, in a country that challenges enough attempts."""
    if segment.get("payment_method", "card") != "card":
        return False
    if "issuer_country" in segment:
        return world.challenge_share(segment["issuer_country"]) >= MIN_CHALLENGE_SHARE
    return True


KIND = IncidentKindSpec(
    name="three_ds_failure",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("issuer_country",), 0.8), (("card_network",), 0.2)),
        effect=lambda s: (s, 2.5),
        eligible=eligible,
        overrides={
            "status": "CASE WHEN {H} AND three_ds = 'challenge' THEN 'declined' ELSE status END",
            "decline_code": "CASE WHEN {H} AND three_ds = 'challenge' THEN (CASE WHEN {a} < 0.8 "
            "THEN '1A' ELSE '05' END) ELSE decline_code END",
            "latency": "CASE WHEN {H} AND three_ds = 'challenge' THEN latency * p.{x}_factor "
            "ELSE latency END",
            "three_ds": "CASE WHEN {H} AND three_ds = 'challenge' THEN 'failed' ELSE three_ds END",
        },
    ),
    acceptable=("notify_oncall",),
    forbidden=("force_3ds", "shift_traffic", "adjust_fraud_rule", "enable_retry"),
    outside_sca_only=("relax_3ds",),
)
