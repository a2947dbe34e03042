"""A route slows down: the slow tail grows, the slowest attempts time out.

Recognised by what moved (a p95 latency shift, surest on a processor; or a processor's
approved attempts slowing down while the rest time out) or where it sits (a processor
whose p99 tripled while its success rate barely dropped). Slow successes are what tell it
from an outage, whose attempts fail fast or time out while successes keep their pace.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import IncidentKindSpec, Injection, Recognition, Signature, by_location
from tools.signals.names import LATENCY, SLOWNESS


def recognise(sig: Signature) -> Recognition | None:
    """A p95 latency shift, or a processor with a slow tail; the stronger of the two."""
    claims: list[Recognition] = []
    on_route = sig.located_on == "processor"
    if sig.measures == SLOWNESS:
        claims.append(Recognition(CONFIDENCE.clean if on_route else CONFIDENCE.elsewhere))
    if on_route and sig.failing and sig.slow_successes:
        claims.append(Recognition(CONFIDENCE.clean))
    if sig.located_on == "processor" and sig.slow_tail:
        tail = by_location(sig, CONFIDENCE.look_alike)
        if tail is not None:
            claims.append(tail)
    return max(claims, key=lambda r: r.confidence, default=None)


KIND = IncidentKindSpec(
    name="latency_spike",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("processor",), 0.7), (("processor", "issuer_country"), 0.3)),
        effect=lambda s: (0.3 + 0.4 * s, 1.0 + 9.0 * s),
        metric=LATENCY,
        overrides={
            # The slow tail grows first: hit attempts slow down by the factor, those past
            # the processor's timeout fail as timeouts, a few are declined 91 by the issuer.
            "status": "CASE WHEN {H} AND latency * p.{x}_factor * (0.5 + {b}) >= "
            "p.timeout_ms[pi] THEN 'error' WHEN {H} AND {a} < 0.05 * p.{x}_severity "
            "THEN 'declined' ELSE status END",
            "decline_code": "CASE WHEN {H} AND latency * p.{x}_factor * (0.5 + {b}) >= "
            "p.timeout_ms[pi] THEN 'timeout' WHEN {H} AND {a} < 0.05 * p.{x}_severity "
            "THEN '91' ELSE decline_code END",
            "latency": "CASE WHEN {H} THEN least(latency * p.{x}_factor * (0.5 + {b}), "
            "p.timeout_ms[pi] + 500 * {a}) ELSE latency END",
        },
    ),
    acceptable=("shift_traffic", "notify_oncall", "enable_retry"),
    forbidden=("adjust_fraud_rule", "disable_payment_method", "relax_3ds"),
    routing_remedy=True,
)
