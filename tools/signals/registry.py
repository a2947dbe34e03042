"""The registry of signals: `SIGNAL_MODULES` is the one list of what observe watches.

Each name is a module of this package defining `SIGNAL = SignalSpec(...)`. The order is
the order of importance: detection reports in it, and when two signals explain the same
change equally, the earlier one's root cause comes first. `registered(spec)` adds a
signal for a block of code (tests add a toy signal that way).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from tools.config import ObserveConfig
from tools.metrics import SegmentTable
from tools.signals.base import Signal, SignalSpec
from tools.signals.names import FAILURES, Measure, Unit

SIGNAL_MODULES: tuple[str, ...] = (
    "success_rate",
    "volume",
    "latency",
    "error_rate",
    "three_ds",
    "decline_codes",
    "decline_mix",
    "volume_surge",
)


def _load(module: str) -> SignalSpec:
    spec = getattr(importlib.import_module(f"tools.signals.{module}"), "SIGNAL", None)
    if not isinstance(spec, SignalSpec):
        raise TypeError(f"tools/signals/{module}.py must define SIGNAL, a SignalSpec")
    return spec


_SIGNALS: dict[str, SignalSpec] = {spec.name: spec for spec in map(_load, SIGNAL_MODULES)}
_BUILT_IN = frozenset(_SIGNALS)


def specs() -> tuple[SignalSpec, ...]:
    """Every registered signal, in registry order."""
    return tuple(_SIGNALS.values())


def get(name: str) -> SignalSpec:
    """The registered signal called `name`; ValueError naming the registered ones if none."""
    spec = _SIGNALS.get(name)
    if spec is None:
        raise ValueError(f"unknown signal {name!r}; one of {', '.join(_SIGNALS)}")
    return spec


def unit_of(name: str) -> Unit:
    """How the values of signal `name` read; a rate for a name not registered here."""
    spec = _SIGNALS.get(name)
    return spec.unit if spec is not None else "rate"


def measures_of(name: str) -> Measure:
    """What signal `name` counts as bad; failing attempts for a name not registered here."""
    spec = _SIGNALS.get(name)
    return spec.measures if spec is not None else FAILURES


def format_level(unit: Unit, value: float) -> str:
    """A baseline or current value as a person reads it."""
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


def bind(table: SegmentTable, cfg: ObserveConfig) -> list[Signal]:
    """Every registered signal's detectors for one table, in registry order."""
    return [signal for spec in _SIGNALS.values() for signal in spec.bind(table, cfg)]


def register(spec: SignalSpec) -> None:
    """Add a signal after the built-in ones; a name can be registered once."""
    if spec.name in _SIGNALS:
        raise ValueError(f"signal {spec.name!r} is already registered")
    _SIGNALS[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a signal added by `register`; the built-in signals stay."""
    if name in _BUILT_IN:
        raise ValueError(f"signal {name!r} is built in")
    _SIGNALS.pop(name, None)


@contextmanager
def registered(spec: SignalSpec) -> Iterator[SignalSpec]:
    """Register `spec` for the length of a `with` block."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.name)
