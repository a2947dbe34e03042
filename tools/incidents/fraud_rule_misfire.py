"""A merchant's fraud rule misfires: its own screen declines good customers (frm_decline).

Recognised by what failed: fraud-screen codes lead the moved declines. A fraud rule is a
merchant's, so the kind sits on a merchant, and a rule change that went live there just
before corroborates it. The generator writes that change into the scenario's context.
"""

from __future__ import annotations

from tools.incidents.confidence import CONFIDENCE
from tools.incidents.spec import (
    CauseChange,
    IncidentKindSpec,
    Injection,
    Recognition,
    Signature,
)

# Fraud-screen codes carrying this share of the moved failure mass name the kind.
FRAUD_LEAD = 0.5


def recognise(sig: Signature) -> Recognition | None:
    """A rate drop led by fraud-screen declines; surest on a merchant with a rule change."""
    if not sig.failing or sig.fraud < FRAUD_LEAD:
        return None
    if "merchant_id" not in sig.dims:
        return Recognition(CONFIDENCE.out_of_place)
    if sig.suspect_changes:
        return Recognition(CONFIDENCE.corroborated)
    return Recognition(CONFIDENCE.uncorroborated)


KIND = IncidentKindSpec(
    name="fraud_rule_misfire",
    recognise=recognise,
    injection=Injection(
        root_shapes=((("merchant_id",), 1.0),),
        effect=lambda s: (0.6 * s, 1.0),
        overrides={
            "status": "CASE WHEN {H} THEN 'declined' ELSE status END",
            "decline_code": "CASE WHEN {H} THEN 'frm_decline' ELSE decline_code END",
        },
        cause_change=CauseChange(
            kind="fraud_rule", prefix="r", versions=(20, 400), target_dims=("merchant_id",)
        ),
    ),
    acceptable=("rollback_config", "adjust_fraud_rule", "notify_oncall"),
    forbidden=("shift_traffic", "failover_processor", "enable_retry", "relax_3ds"),
)
