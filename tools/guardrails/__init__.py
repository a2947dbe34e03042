"""Hard policy between a proposed decision and its execution.

Rules live in one file per concern and are registered in `engine.RULES`; the global
limits live in `limits`, each action's own in its catalogue module (tools/actions/). The
model proposes; this package disposes.
"""

from tools.guardrails.base import Escalation, Finding, GuardInput, GuardVerdict, Rule
from tools.guardrails.engine import RULES, evaluate, registered_rule, rules
from tools.guardrails.limits import (
    HARD_CEILINGS,
    HARD_FLOORS,
    GuardConfig,
    GuardLimits,
    effective_limits,
)

__all__ = [
    "HARD_CEILINGS",
    "HARD_FLOORS",
    "RULES",
    "Escalation",
    "Finding",
    "GuardConfig",
    "GuardInput",
    "GuardLimits",
    "GuardVerdict",
    "Rule",
    "effective_limits",
    "evaluate",
    "registered_rule",
    "rules",
]
