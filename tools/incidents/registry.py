"""The registry of incident kinds: one line per kind, in the order users see them.

Adding a kind: write `tools/incidents/<name>.py` defining `KIND = IncidentKindSpec(name=
"<name>", ...)` and add `"<name>"` to `KIND_MODULES`. The contract's closed list
(`contract.INCIDENT_KINDS`, CONTRACT.md section 2) is this registry, so the name then
validates wherever an incident kind is read, the generator can inject it and the
reasoner can recognise it. `registered(spec)` adds a kind for the length of a block
(a test's toy kind, a plugin).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

from tools.catalogue import Catalogue
from tools.incidents.spec import IncidentKindSpec

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


CATALOGUE: Catalogue[IncidentKindSpec] = Catalogue(
    "tools.incidents", KIND_MODULES, "KIND", IncidentKindSpec, "incident kind",
    named_after_module=True,
)  # fmt: skip
_KINDS = CATALOGUE.specs
kinds = CATALOGUE.all
get = CATALOGUE.get
register = CATALOGUE.register
unregister = CATALOGUE.unregister
registered = CATALOGUE.registered


class KindNames(Sequence[str]):
    """The registered kinds' names, in order; a live view, so later registrations show."""

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return tuple(_KINDS)[index]

    def __len__(self) -> int:
        return len(_KINDS)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in _KINDS

    def __repr__(self) -> str:
        return f"KindNames{tuple(_KINDS)!r}"


NAMES = KindNames()
