"""The registry of actions: one line per action, in the order users see them.

Adding an action: write `tools/actions/<name>.py` defining `ACTION = ActionSpec(name=
"<name>", ...)` and add `"<name>"` to `ACTION_MODULES`. The contract's closed list
(`contract.ACTION_NAMES`, CONTRACT.md section 4) is this registry, so the name then
validates wherever an action is read; guard checks its evidence floor and TTL, the
simulator estimates it, the reasoner proposes it for the kinds its playbook answers, the
prompts list it, and payops.toml can tighten its limits. `registered(spec)` adds an action
for the length of a block (a test's toy action, a plugin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.actions.spec import ActionLimit, ActionSpec, segment_param
from tools.fields import Names, Segment
from tools.registry import Registry

# The order is the contract's (CONTRACT.md section 4); the prompts' table follows it, and
# it breaks ties between actions at the same position of a playbook.
ACTION_MODULES: tuple[str, ...] = (
    "no_action",
    "notify_oncall",
    "shift_traffic",
    "failover_processor",
    "enable_retry",
    "force_3ds",
    "relax_3ds",
    "rollback_config",
    "adjust_fraud_rule",
    "disable_payment_method",
)

Spec = ActionSpec[Any]


def _check(spec: Spec, registry: Registry[Spec]) -> None:
    """Refuse a spec whose TTL has no parameter, or whose limit clashes with another's."""
    if spec.ttl is not None and "ttl_minutes" not in spec.params.model_fields:
        raise TypeError(f"action {spec.name!r} has a TTL limit but no ttl_minutes parameter")
    known = {lim.name: lim for other in registry.all() for lim in other.all_limits}
    for limit in spec.all_limits:
        if known.get(limit.name, limit) != limit:
            raise ValueError(
                f"limit {limit.name!r} of {spec.name!r} differs from the registered one"
            )


_REGISTRY: Registry[Spec] = Registry(
    "action", "tools.actions", "ACTION", ActionSpec, ACTION_MODULES, _check
)
NAMES, get, register, unregister, registered = _REGISTRY.api()
_load = _REGISTRY.load


def actions() -> tuple[Spec, ...]:
    """Every registered action, in registry order."""
    return _REGISTRY.all()


def limits() -> Mapping[str, ActionLimit]:
    """Every registered action's own limits, by the name payops.toml gives them."""
    return {lim.name: lim for spec in _REGISTRY.all() for lim in spec.all_limits}


def playbook(kind: str) -> tuple[Spec, ...]:
    """The actions that answer incident kind `kind`, in the order they are reached for
    (their playbook positions, then registry order)."""
    answering = [
        (position, index, spec)
        for index, spec in enumerate(_REGISTRY.all())
        if (position := spec.playbook.position(kind)) is not None
    ]
    return tuple(spec for _, _, spec in sorted(answering, key=lambda t: (t[0], t[1])))


def is_passive(name: str) -> bool:
    """True for a registered action that changes nothing in the payment flow; an action
    payops does not know (an entry written by another version) is not passive."""
    spec = _REGISTRY.find(name)
    return spec is not None and spec.passive


def target_segment(name: str, params: Mapping[str, Any]) -> Segment:
    """The segment action `name` with `params` applies to ({} for actions that have none).

    Reads params that may not validate (an entry written by another version); an action
    payops does not know is taken at its `segment` parameter.
    """
    spec = _REGISTRY.find(name)
    return segment_param(params) if spec is None else spec.target(params)


def named(spec: Spec) -> dict[str, Names]:
    """What each of the action's parameters names (`fields.Names`), where one does."""
    found: dict[str, Names] = {}
    for param, info in spec.params.model_fields.items():
        marks = [*info.metadata]
        for arg in getattr(info.annotation, "__args__", ()):  # `Processor | None`
            marks += getattr(arg, "__metadata__", ())
        names = [m for m in marks if isinstance(m, Names)]
        if names:
            found[param] = names[0]
    return found


def _params_text(spec: Spec) -> str:
    fields = spec.params.model_fields.items()
    text = ", ".join(f"`{n}` ({f.description})" if f.description else f"`{n}`" for n, f in fields)
    return text.replace("|", "\\|")


def table() -> str:
    """The catalogue as a Markdown table for a model's prompt: each registered action, its
    parameters, its default risk and what it does."""
    rows = ["| action | params | risk | what it does |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {_params_text(s)} | {s.risk} | {s.description} |" for s in actions()]
    return "\n".join(rows)
