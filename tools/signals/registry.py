"""The registry of signals: `SIGNAL_MODULES` is the one list of what observe watches.

Each name is a module of this package defining `SIGNAL = SignalSpec(...)`. The order is
the order of importance: detection reports in it, and when two signals explain the same
change equally, the earlier one's root cause comes first. `registered(spec)` adds a
signal for a block of code (tests add a toy signal that way).
"""

from __future__ import annotations

from tools.config import ObserveConfig
from tools.metrics import SegmentTable
from tools.registry import Registry
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


_REGISTRY: Registry[SignalSpec] = Registry(
    "signal", "tools.signals", "SIGNAL", SignalSpec, SIGNAL_MODULES, named_after_module=False
)
NAMES, get, register, unregister, registered = _REGISTRY.api()
specs = _REGISTRY.all


def unit_of(name: str) -> Unit:
    """How the values of signal `name` read; a rate for a name not registered here."""
    spec = _REGISTRY.find(name)
    return spec.unit if spec is not None else "rate"


def measures_of(name: str) -> Measure:
    """What signal `name` counts as bad; failing attempts for a name not registered here."""
    spec = _REGISTRY.find(name)
    return spec.measures if spec is not None else FAILURES


def loses_approvals(name: str) -> bool:
    """Whether signal `name` counts approvals lost; not for a name not registered here."""
    spec = _REGISTRY.find(name)
    return spec.loses_approvals if spec is not None else False


def format_level(unit: Unit, value: float) -> str:
    """A baseline or current value as a person reads it."""
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


def bind(table: SegmentTable, cfg: ObserveConfig) -> list[Signal]:
    """Every registered signal's detectors for one table, in registry order."""
    return [signal for spec in _REGISTRY.all() for signal in spec.bind(table, cfg)]
