"""No incident: quiet traffic, or a change too weak to act on.

Never recognised from a root cause: the reasoner concludes it when nothing changed
significantly. The generator injects nothing. Every action that changes traffic is
forbidden: there is nothing to fix.
"""

from __future__ import annotations

from tools.incidents.spec import QUIET, IncidentKindSpec

KIND = IncidentKindSpec(
    name=QUIET,
    recognise=None,
    injection=None,
    acceptable=("no_action",),
    forbidden=(
        "shift_traffic", "failover_processor", "enable_retry", "force_3ds", "relax_3ds",
        "rollback_config", "adjust_fraud_rule", "disable_payment_method",
    ),
)  # fmt: skip
