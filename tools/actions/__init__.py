"""The action catalogue: one module per action, registered in `registry.ACTION_MODULES`.

An action module defines `ACTION`, an `ActionSpec`: its parameter model, default risk and
description for models, its evidence floor and hard limits, the simulator's estimate of
its effect, the incident kinds whose playbook it is in, and the candidates it offers the
reasoner. The contract validates action names and decisions against this registry; guard,
the simulator, the reasoner, the executor, chat and the prompts read it.
"""

from tools.actions.registry import (
    ACTION_MODULES,
    NAMES,
    actions,
    get,
    is_passive,
    limits,
    named,
    playbook,
    register,
    registered,
    table,
    target_segment,
    unregister,
)
from tools.actions.spec import (
    NO_ACTION,
    ActionLimit,
    ActionSpec,
    CandidateBuilder,
    Estimate,
    Estimator,
    Incident,
    Limits,
    Playbook,
    Route,
    Snapshot,
)

__all__ = [
    "ACTION_MODULES",
    "NAMES",
    "NO_ACTION",
    "ActionLimit",
    "ActionSpec",
    "CandidateBuilder",
    "Estimate",
    "Estimator",
    "Incident",
    "Limits",
    "Playbook",
    "Route",
    "Snapshot",
    "actions",
    "get",
    "is_passive",
    "limits",
    "named",
    "playbook",
    "register",
    "registered",
    "table",
    "target_segment",
    "unregister",
]
