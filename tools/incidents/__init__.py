"""The incident-kind catalogue: one module per kind, registered in `registry.KIND_MODULES`.

A kind module defines `KIND`, an `IncidentKindSpec`: how the reasoner recognises the kind
from a root cause's `Signature` (with a confidence grade from `confidence.CONFIDENCE`),
how the generator injects it into traffic, and which actions its ground truth accepts or
forbids. The contract validates incident-kind names against this registry.
"""

from tools.incidents.confidence import CONFIDENCE, Confidences
from tools.incidents.registry import (
    KIND_MODULES,
    NAMES,
    get,
    kinds,
    register,
    registered,
    unregister,
)
from tools.incidents.spec import (
    QUIET,
    CauseChange,
    Change,
    Classifier,
    IncidentKindSpec,
    Injection,
    Recognition,
    Signature,
    World,
    by_location,
)

__all__ = [
    "CONFIDENCE",
    "KIND_MODULES",
    "NAMES",
    "QUIET",
    "CauseChange",
    "Change",
    "Classifier",
    "Confidences",
    "IncidentKindSpec",
    "Injection",
    "Recognition",
    "Signature",
    "World",
    "by_location",
    "get",
    "kinds",
    "register",
    "registered",
    "unregister",
]
