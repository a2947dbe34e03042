"""A catalogue of specs, one per module, in a registry's order: what incident kinds and
signals are both built on.

A registry names its modules in one list; each module defines one spec object under a
fixed attribute (`KIND`, `SIGNAL`). `registered(spec)` adds one after the built-in ones for
the length of a block (a test's toy, a plugin). This module imports nothing of payops, so
the lowest layers can use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    """A spec: it has a name."""

    @property
    def name(self) -> str: ...


SpecT = TypeVar("SpecT", bound=Named)


class Catalogue(Generic[SpecT]):
    """The specs of `package.<module>.<attribute>` for each of `modules`, by name."""

    def __init__(
        self,
        package: str,
        modules: Sequence[str],
        attribute: str,
        spec_type: type[SpecT],
        what: str,
        *,
        named_after_module: bool = False,
    ) -> None:
        self.what = what
        self.specs: dict[str, SpecT] = {}
        for module in modules:
            spec = getattr(importlib.import_module(f"{package}.{module}"), attribute, None)
            if not isinstance(spec, spec_type) or (named_after_module and spec.name != module):
                path = f"{package.replace('.', '/')}/{module}.py"
                raise TypeError(f"{path} must define {attribute}, its {spec_type.__name__}")
            self.specs[spec.name] = spec
        self.built_in = frozenset(self.specs)

    def all(self) -> tuple[SpecT, ...]:
        """Every registered spec, in registry order."""
        return tuple(self.specs.values())

    def get(self, name: str) -> SpecT:
        """The spec called `name`; ValueError naming the registered ones if none."""
        spec = self.specs.get(name)
        if spec is None:
            raise ValueError(f"unknown {self.what} {name!r}; one of {', '.join(self.specs)}")
        return spec

    def register(self, spec: SpecT) -> None:
        """Add a spec after the built-in ones; a name can be registered once."""
        if spec.name in self.specs:
            raise ValueError(f"{self.what} {spec.name!r} is already registered")
        self.specs[spec.name] = spec

    def unregister(self, name: str) -> None:
        """Remove a spec added by `register`; the built-in ones stay."""
        if name in self.built_in:
            raise ValueError(f"{self.what} {name!r} is built in")
        self.specs.pop(name, None)

    @contextmanager
    def registered(self, spec: SpecT) -> Iterator[SpecT]:
        """Register `spec` for the length of a `with` block."""
        self.register(spec)
        try:
            yield spec
        finally:
            self.unregister(spec.name)
