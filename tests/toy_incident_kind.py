"""A toy incident kind, written the way a new kind is added to tools/incidents/.

An issuer's card-expiry check misfires: good cards come back declined 54 (expired card)
in one issuer country. Only the registry line is missing, and tests/test_incidents.py
supplies it with `registered(KIND)`.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import IncidentKindSpec, Injection, Recognition, Signature

EXPIRED_CARD = "54"


def recognise(sig: Signature) -> Recognition | None:
    """A rate drop led by expired-card declines."""
    if sig.metric != "success_rate" or sig.moved_codes[:1] != (EXPIRED_CARD,):
        return None
    return Recognition(CONFIDENCE.clean)


KIND = IncidentKindSpec(
    name="expired_card_wave",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("issuer_country",), 1.0),),
        effect=lambda s: (0.5 * s, 1.0),
        overrides={
            "status": "CASE WHEN {H} THEN 'declined' ELSE status END",
            "decline_code": f"CASE WHEN {{H}} THEN '{EXPIRED_CARD}' ELSE decline_code END",
        },
    ),
    acceptable=("notify_oncall",),
    forbidden=("shift_traffic", "failover_processor", "enable_retry", "relax_3ds"),
)
