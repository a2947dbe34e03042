"""A toy guard rule, written the way a rule is added to tools/guardrails/.

Refreshing cards in bulk rewrites many cardholders' stored credentials: above the toy
action's batch limit (tests/toy_action.py, tighter in payops.toml if set) a human
approves. Only the registry line is missing, and tests/test_actions.py supplies it with
`registered_rule(card_refresh_batch)`.
"""

from __future__ import annotations

from tests.toy_action import EXPIRED_CARD, MAX_BATCH, RefreshCardCredentialsParams
from tools.guardrails.base import Escalation, Finding, GuardInput
from tools.guardrails.limits import GuardLimits


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
