"""Toy guard rules, written the way a rule is added to tools/guardrails/.

Only the registry line is missing; the tests supply it with `registered_rule(rule)`.

- `card_refresh_batch`: refreshing cards in bulk rewrites many cardholders' stored
  credentials, so above the toy action's batch limit (tests/toy_action.py, tighter in
  payops.toml if set) a human approves (tests/test_actions.py).
- `change_freeze`: no traffic moves onto a processor during its maintenance freeze; a
  rule on the built-in actions (tests/test_guardrails.py).
"""

from __future__ import annotations

from tests.toy_action import EXPIRED_CARD, MAX_BATCH, RefreshCardCredentialsParams
from tools.guardrails.base import Escalation, Finding, GuardInput, violation
from tools.guardrails.limits import GuardLimits
from tools.identifiers import same_identifier

FROZEN_PROCESSOR = "acq_a"


def card_refresh_batch(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A refresh of more cards than the batch limit needs a human."""
    if not isinstance(inp.params, RefreshCardCredentialsParams):
        return []
    cards, most = inp.snapshot.decline_codes.get(EXPIRED_CARD, 0), limits.of(MAX_BATCH)
    if cards > most:
        return [
            Escalation(
                "card_refresh_batch", f"refreshes {cards} cards, above the batch of {most:g}"
            )
        ]
    return []


def change_freeze(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """No traffic is sent to a processor under a change freeze: not shifted or failed over
    to it, nor retried on it."""
    for field in ("to_processor", "backup_processor"):
        target = getattr(inp.params, field, None)
        if isinstance(target, str) and same_identifier(target, FROZEN_PROCESSOR):
            return violation("change_freeze", f"{target} is under a change freeze")
    return []
