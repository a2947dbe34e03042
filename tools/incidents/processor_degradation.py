"""A processor is degraded: issuer-style 91/96 declines and some errors on a slice of it.

Recognised where it sits: a technical drop on a processor carried by declines rather than
errors. A degradation usually hits one slice (a network or a country on the processor),
so a two-dimension root cause is the corroborated case.
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
    """A processor failing with declines more than errors, and not just a slow tail."""
    if sig.located_on != "processor" or sig.slow_tail or sig.errors_lead:
        return None
    sliced = len(sig.dims) > 1
    return by_location(sig, CONFIDENCE.corroborated if sliced else CONFIDENCE.look_alike)


KIND = IncidentKindSpec(
    name="processor_degradation",
    recognise=recognise,
    injection=Injection(
        root_shapes=(
            (("processor", "card_network"), 0.5),
            (("processor", "issuer_country"), 0.5),
        ),
        effect=lambda s: (0.3 * s, 1.0 + 0.4 * s),
        eligible=busy_network,
        overrides={
            "status": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.75 THEN 'declined' ELSE 'error' "
            "END) ELSE status END",
            "decline_code": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.45 THEN '91' WHEN {a} < "
            "0.75 THEN '96' ELSE 'processing_error' END) ELSE decline_code END",
            "latency": "CASE WHEN {S} THEN latency * p.{x}_factor ELSE latency END",
        },
    ),
    acceptable=("shift_traffic", "notify_oncall", "enable_retry"),
    forbidden=("adjust_fraud_rule", "relax_3ds", "disable_payment_method"),
    routing_remedy=True,
)
