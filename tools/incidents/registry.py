"""The registry of incident kinds: one line per kind, in the order users see them.

Adding a kind: write `tools/incidents/<name>.py` defining `KIND = IncidentKindSpec(name=
"<name>", ...)` and add `"<name>"` to `KIND_MODULES`. The contract's closed list
(`contract.INCIDENT_KINDS`, CONTRACT.md section 2) is this registry, so the name then
validates wherever an incident kind is read, the generator can inject it and the
reasoner can recognise it. `registered(spec)` adds a kind for the length of a block
(a test's toy kind, a plugin).
"""

from __future__ import annotations

from tools.incidents.spec import IncidentKindSpec
from tools.registry import Registry

# The order is the contract's: `payops generate --all` and the library plan follow it, and
# the reasoner breaks ties between equally confident kinds by it.
KIND_MODULES: tuple[str, ...] = (
    "none",
    "processor_outage",
    "processor_degradation",
    "issuer_outage",
    "network_incident",
    "three_ds_failure",
    "fraud_rule_misfire",
    "latency_spike",
    "checkout_integration_break",
    "benign_shift",
)


_REGISTRY: Registry[IncidentKindSpec] = Registry(
    "incident kind", "tools.incidents", "KIND", IncidentKindSpec, KIND_MODULES
)
NAMES, get, register, unregister, registered = _REGISTRY.api()
_load = _REGISTRY.load


def kinds() -> tuple[IncidentKindSpec, ...]:
    """Every registered kind, in registry order."""
    return _REGISTRY.all()
