"""A processor (acquirer, PSP) is down: gateway errors and timeouts across its traffic.

Recognised where it sits: a technical drop on a processor, carried by errors rather than
declines. An outage usually spans the whole processor, so a one-dimension root cause is
the corroborated case.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import IncidentKindSpec, Injection, Recognition, Signature, by_location


def recognise(sig: Signature) -> Recognition | None:
    """A processor failing with errors, not declines, and not a slow route."""
    if sig.located_on != "processor" or sig.slow_tail or sig.slow_successes or not sig.errors_lead:
        return None
    whole = len(sig.dims) == 1
    return by_location(sig, CONFIDENCE.corroborated if whole else CONFIDENCE.uncorroborated)


KIND = IncidentKindSpec(
    name="processor_outage",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("processor",), 1.0),),
        effect=lambda s: (0.9 * s, 1.0),
        overrides={
            "status": "CASE WHEN {H} THEN 'error' ELSE status END",
            "decline_code": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.6 THEN 'timeout' "
            "ELSE 'processing_error' END) ELSE decline_code END",
            "latency": "CASE WHEN {H} THEN (CASE WHEN {a} < 0.6 THEN p.timeout_ms[pi] + "
            "2000 * {b} ELSE 15 + 120 * {b} END) ELSE latency END",
        },
    ),
    acceptable=("shift_traffic", "failover_processor", "notify_oncall"),
    forbidden=("adjust_fraud_rule", "relax_3ds"),
    routing_remedy=True,
)
