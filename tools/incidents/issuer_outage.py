"""An issuer (a country's banks) stops answering: 91/96 declines, latency climbing.

Recognised where it sits: a technical drop in an issuer country, on no one processor.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import IncidentKindSpec, Injection, Recognition, Signature, by_location


def recognise(sig: Signature) -> Recognition | None:
    """A failure located in an issuer country (and not on a processor)."""
    if sig.located_on != "issuer_country":
        return None
    return by_location(sig, CONFIDENCE.clean)


KIND = IncidentKindSpec(
    name="issuer_outage",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("issuer_country",), 1.0),),
        effect=lambda s: (0.7 * s, 12_000.0 * s),
        overrides={
            "status": "CASE WHEN {H} THEN 'declined' ELSE status END",
            "decline_code": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.6 THEN '91' ELSE '96' END) "
            "ELSE decline_code END",
            # Issuer timeouts build up over the incident: latency climbs toward the timeout.
            "latency": "CASE WHEN {H} THEN greatest(latency, 1500 + p.{x}_factor * frac * {b}) "
            "WHEN {S} THEN latency * (1 + 2 * p.{x}_severity * frac) ELSE latency END",
        },
    ),
    acceptable=("notify_oncall", "enable_retry"),
    forbidden=("shift_traffic", "failover_processor", "adjust_fraud_rule", "relax_3ds"),
)
