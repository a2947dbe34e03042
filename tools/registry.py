"""A catalogue's registry: named specs, one module each, plus those registered at run time.

The incident-kind catalogue (tools/incidents/), the action catalogue (tools/actions/) and
the signals (tools/signals/) each keep one `Registry`: the built-in specs load from their
modules in a fixed order (the order users see), and `register` adds one after them (a
test's toy, a plugin) until `unregister` removes it. `names` is a live view of the
registered names, which is what the contract validates against.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Generic, Protocol, TypeVar, overload


class Named(Protocol):
    """A spec with a name."""

    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=Named)


class Registry(Generic[S]):
    """The registered specs of one catalogue, by name, in registry order.

    `noun` names a spec in messages (`incident kind`, `action`). Each of `modules` (a
    module of `package`) defines `attribute`, a `spec_type` whose name is the module's
    (unless `named_after_module` is False: a signal's name is what records say, which a
    module name cannot always spell). `check(spec, registry)` may refuse a spec that
    clashes with the registered ones.
    """

    def __init__(
        self,
        noun: str,
        package: str,
        attribute: str,
        spec_type: type[S],
        modules: tuple[str, ...],
        check: Callable[[S, Registry[S]], None] | None = None,
        *,
        named_after_module: bool = True,
    ) -> None:
        self.noun = noun
        self.package = package
        self.attribute = attribute
        self.spec_type = spec_type
        self.modules = modules
        self._check = check
        self._named_after_module = named_after_module
        self._specs: dict[str, S] = {}
        self.names = NameView(self)
        for module in modules:
            self.register(self.load(module))
        self._built_in = frozenset(self._specs)

    def load(self, module: str) -> S:
        """The spec module `module` of the package defines; TypeError if it does not."""
        spec = getattr(importlib.import_module(f"{self.package}.{module}"), self.attribute, None)
        if not isinstance(spec, self.spec_type) or (
            self._named_after_module and spec.name != module
        ):
            path = self.package.replace(".", "/")
            raise TypeError(f"{path}/{module}.py must define {self.attribute}, the {module!r} spec")
        return spec

    def all(self) -> tuple[S, ...]:
        """Every registered spec, in registry order."""
        return tuple(self._specs.values())

    def find(self, name: str) -> S | None:
        """The registered spec called `name`, or None."""
        return self._specs.get(name)

    def get(self, name: str) -> S:
        """The registered spec called `name`; ValueError naming the registered ones if none."""
        spec = self._specs.get(name)
        if spec is None:
            raise ValueError(f"unknown {self.noun} {name!r}; one of {', '.join(self._specs)}")
        return spec

    def register(self, spec: S) -> None:
        """Add a spec after the registered ones; a name can be registered once."""
        if spec.name in self._specs:
            raise ValueError(f"{self.noun} {spec.name!r} is already registered")
        if self._check is not None:
            self._check(spec, self)
        self._specs[spec.name] = spec

    def unregister(self, name: str) -> None:
        """Remove a spec added by `register`; the built-in ones stay."""
        if name in self._built_in:
            raise ValueError(f"{self.noun} {name!r} is built in")
        self._specs.pop(name, None)

    def api(
        self,
    ) -> tuple[
        NameView,
        Callable[[str], S],
        Callable[[S], None],
        Callable[[str], None],
        Callable[[S], AbstractContextManager[S]],
    ]:
        """What a catalogue's registry module offers: `NAMES, get, register, unregister,
        registered` (this registry's `names` and methods)."""
        return self.names, self.get, self.register, self.unregister, self.registered

    @contextmanager
    def registered(self, spec: S) -> Iterator[S]:
        """Register `spec` for the length of a `with` block."""
        self.register(spec)
        try:
            yield spec
        finally:
            self.unregister(spec.name)


class NameView(Sequence[str]):
    """A registry's names, in order; a live view, so later registrations show."""

    def __init__(self, registry: Registry[Any]) -> None:
        self._registry = registry

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return tuple(s.name for s in self._registry.all())[index]

    def __len__(self) -> int:
        return len(self._registry.all())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._registry.find(name) is not None

    def __repr__(self) -> str:
        return f"{self._registry.noun} names {tuple(self)!r}"
