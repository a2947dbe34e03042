"""The registry of incident kinds: one line per kind, in the order users see them.

Adding a kind: write `tools/incidents/<name>.py` defining `KIND = IncidentKindSpec(name=
"<name>", ...)` and add `"<name>"` to `KIND_MODULES`. The contract's closed list
(`contract.INCIDENT_KINDS`, CONTRACT.md section 2) is this registry, so the name then
validates wherever an incident kind is read, the generator can inject it and the
reasoner can recognise it. `registered(spec)` adds a kind for the length of a block
(a test's toy kind, a plugin).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import overload

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


def _load(module: str) -> IncidentKindSpec:
    spec = getattr(importlib.import_module(f"tools.incidents.{module}"), "KIND", None)
    if not isinstance(spec, IncidentKindSpec) or spec.name != module:
        raise TypeError(f"tools/incidents/{module}.py must define KIND, the {module!r} spec")
    return spec


_KINDS: dict[str, IncidentKindSpec] = {spec.name: spec for spec in map(_load, KIND_MODULES)}


def kinds() -> tuple[IncidentKindSpec, ...]:
    """Every registered kind, in registry order."""
    return tuple(_KINDS.values())


def get(name: str) -> IncidentKindSpec:
    """The registered kind called `name`; ValueError naming the registered ones if none."""
    spec = _KINDS.get(name)
    if spec is None:
        raise ValueError(f"unknown incident kind {name!r}; one of {', '.join(_KINDS)}")
    return spec


def register(spec: IncidentKindSpec) -> None:
    """Add a kind after the built-in ones; a name can be registered once."""
    if spec.name in _KINDS:
        raise ValueError(f"incident kind {spec.name!r} is already registered")
    _KINDS[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a kind added by `register`; the built-in kinds stay."""
    if name in KIND_MODULES:
        raise ValueError(f"incident kind {name!r} is built in")
    _KINDS.pop(name, None)


@contextmanager
def registered(spec: IncidentKindSpec) -> Iterator[IncidentKindSpec]:
    """Register `spec` for the length of a `with` block."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)


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
