"""A real change no action can or should fix: an insufficient-funds (51) wave at month
end, or a shift in the traffic mix.

Recognised by what failed (insufficient-funds declines lead the moved declines) or by
what moved (a segment's share of traffic grew while no rate dropped: a mix shift). The
generator injects the month-end wave, on the last day of a month.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import IncidentKindSpec, Injection, Recognition, Signature
from tools.signals.names import SURPLUS

# Insufficient-funds declines carrying this share of the moved failure mass name the kind.
INSUFFICIENT_FUNDS_LEAD = 0.5


def recognise(sig: Signature) -> Recognition | None:
    """A rate drop led by insufficient-funds declines, or a traffic-mix shift."""
    if sig.mix_shift or sig.measures == SURPLUS:
        return Recognition(CONFIDENCE.uncorroborated)
    if not sig.failing or sig.insufficient_funds < INSUFFICIENT_FUNDS_LEAD:
        return None
    return Recognition(CONFIDENCE.clean)


KIND = IncidentKindSpec(
    name="benign_shift",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("issuer_country",), 1.0),),
        effect=lambda s: (0.2 * s, 1.0),
        overrides={
            "status": "CASE WHEN {H} AND status = 'approved' THEN 'declined' ELSE status END",
            "decline_code": "CASE WHEN {H} AND status = 'approved' THEN '51' "
            "ELSE decline_code END",
        },
        at_month_end=True,
    ),
    acceptable=("no_action", "notify_oncall"),
    forbidden=(
        "enable_retry", "shift_traffic", "failover_processor", "adjust_fraud_rule", "relax_3ds",
    ),
)  # fmt: skip
