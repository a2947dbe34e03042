"""A checkout integration breaks: attempts stop arriving (a bad release, a broken form).

Recognised by what moved: volume dropped, with no failing attempts to show for it. A
release that went live on the segment just before corroborates it; the generator writes
that release into the scenario's context.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import (
    CauseChange,
    IncidentKindSpec,
    Injection,
    Recognition,
    Signature,
    World,
)
from tools.signals.names import MISSING, VOLUME


def recognise(sig: Signature) -> Recognition | None:
    """A volume drop; surest with a release on the segment just before."""
    if sig.measures != MISSING:
        return None
    return Recognition(
        CONFIDENCE.corroborated if sig.suspect_changes else CONFIDENCE.uncorroborated
    )


def eligible(world: World, segment: Mapping[str, str]) -> bool:
    """A broken card form is the merchant case: a payment-method break is not card."""
    if "payment_method" in segment:
        return segment["payment_method"] != "card"
    return True


KIND = IncidentKindSpec(
    name="checkout_integration_break",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("payment_method",), 0.4), (("merchant_id",), 0.6)),
        effect=lambda s: (0.0, min(0.95, 0.95 * s)),
        eligible=eligible,
        metric=VOLUME,
        cause_change=CauseChange(kind="checkout_release", prefix="web-", versions=(100, 900)),
    ),
    acceptable=("rollback_config", "notify_oncall"),
    forbidden=("shift_traffic", "failover_processor", "enable_retry", "adjust_fraud_rule"),
)
