"""The closed vocabulary of change kinds: what a `recent_changes[].kind` means.

A change kind is free text in `scenario.json` (`fraud_rule`, `frm_rule`, `Risk Rule`...).
Policy must not depend on how it is spelled, so every consumer (guard, reasoner,
simulator) asks `change_class` what class of change it is. A kind that is in no class is
unknown, and an unknown change is never rolled back without a human (docs/identifiers.md).

Extending the vocabulary: add a spelling to its class in `SYNONYMS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

from tools.identifiers import identifier_key

ChangeClass = Literal[
    "fraud_rule",  # fraud / risk screening rules and their thresholds
    "three_ds_policy",  # when 3-D Secure is requested, SCA exemptions
    "routing",  # which processor carries which traffic
    "retry_policy",  # cascading retries
    "checkout_release",  # the merchant's checkout (web, app, SDK)
    "payment_method_config",  # which payment methods are offered
    "processor_config",  # credentials, endpoints, timeouts of one processor
]
CHANGE_CLASSES: tuple[ChangeClass, ...] = get_args(ChangeClass)

# Every known spelling, as its key (see `change_kind_key`), by class.
SYNONYMS: Final[Mapping[ChangeClass, frozenset[str]]] = MappingProxyType(
    {
        "fraud_rule": frozenset(
            {
                "fraud_rule", "fraud_rules", "fraud_config", "fraud_threshold", "fraud_filter",
                "fraud_model", "frm_rule", "frm_config", "frm_threshold", "risk_rule",
                "risk_rules", "risk_config", "risk_threshold", "risk_score_threshold",
                "velocity_rule", "velocity_limit", "velocity_check", "blocklist",
                "block_list", "denylist", "radar_rule",
            }
        ),
        "three_ds_policy": frozenset(
            {
                "3ds_policy", "3ds_rule", "3ds_config", "3ds_exemption", "3ds_exemptions",
                "three_ds_policy", "three_ds_rule", "three_ds_config", "three_ds_exemption",
                "sca_policy", "sca_exemption", "sca_exemptions", "exemption_policy",
                "authentication_policy", "authentication_rule",
            }
        ),
        "routing": frozenset(
            {
                "routing", "routing_config", "routing_rule", "routing_rules",
                "routing_weights", "processor_weights", "traffic_split", "smart_routing",
            }
        ),
        "retry_policy": frozenset(
            {"retry_policy", "retry_config", "retry_rule", "cascading_retry", "cascade_config"}
        ),
        "checkout_release": frozenset(
            {
                "checkout_release", "checkout_config", "checkout_deploy", "web_release",
                "app_release", "sdk_release", "frontend_release", "release", "deploy",
                "deployment",
            }
        ),
        "payment_method_config": frozenset(
            {"payment_method_config", "payment_methods", "method_config"}
        ),
        "processor_config": frozenset(
            {
                "processor_config", "acquirer_config", "gateway_config", "psp_config",
                "processor_credentials", "processor_endpoint",
            }
        ),
    }
)  # fmt: skip

_SEPARATORS = re.compile(r"[\s\-./]+")
_CLASS_OF: Final[Mapping[str, ChangeClass]] = MappingProxyType(
    {spelling: cls for cls, spellings in SYNONYMS.items() for spelling in spellings}
)


def change_kind_key(kind: str) -> str:
    """The key a change kind is looked up by: its identifier key, separators as `_`."""
    return _SEPARATORS.sub("_", identifier_key(kind)).strip("_")


def change_class(kind: str) -> ChangeClass | None:
    """The class of a change kind (any spelling), or None when the kind is unknown."""
    return _CLASS_OF.get(change_kind_key(kind))


def is_fraud_rule_change(kind: str) -> bool:
    """A change to fraud or risk screening (rolling it back changes fraud exposure)."""
    return change_class(kind) == "fraud_rule"
