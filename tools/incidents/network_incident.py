"""A card network has an incident: 91/96/05 declines and timeouts on its cards.

Recognised where it sits: a technical drop on a card network, on no one processor or
issuer. A technical drop located nowhere at all is taken as a network incident too, at a
low confidence: it spans every processor and country.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import (
    IncidentKindSpec,
    Injection,
    Recognition,
    Signature,
    busy_network,
    by_location,
)


def recognise(sig: Signature) -> Recognition | None:
    """A failure on a card network, or on no processor, issuer or network at all."""
    if sig.located_on == "card_network":
        return by_location(sig, CONFIDENCE.clean)
    if sig.located_on is None:
        return by_location(sig, CONFIDENCE.unplaced)
    return None


KIND = IncidentKindSpec(
    name="network_incident",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("card_network",), 1.0),),
        effect=lambda s: (0.4 * s, 1.5 + s),
        eligible=busy_network,
        overrides={
            "status": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.8 THEN 'declined' ELSE 'error' "
            "END) ELSE status END",
            "decline_code": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.35 THEN '91' WHEN {a} < 0.6 "
            "THEN '96' WHEN {a} < 0.8 THEN '05' ELSE 'timeout' END) ELSE decline_code END",
            "latency": "CASE WHEN {H} AND {a} >= 0.8 THEN p.timeout_ms[pi] + 2000 * {b} "
            "WHEN {S} THEN latency * p.{x}_factor ELSE latency END",
        },
    ),
    acceptable=("notify_oncall", "enable_retry"),
    forbidden=("failover_processor", "shift_traffic", "adjust_fraud_rule"),
)
