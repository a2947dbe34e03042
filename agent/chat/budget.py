"""Tool results as compact JSON that fits a model's context.

A result goes to the model as JSON without spaces. When it is longer than the budget, its
longest list is halved (lists are ranked, most important first) until it fits, and a
`truncated` entry says how many items each list lost and how to narrow the query. The
person at the terminal sees the whole result (the tool message's artifact).
"""

from __future__ import annotations

import json
from typing import Any

TRUNCATED_KEY = "truncated"
NARROW_HINT = "narrow the query (a smaller segment, one dimension, a shorter window)"


def dumps(data: Any) -> str:
    """Compact, deterministic JSON (no spaces, non-ASCII kept)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def _lists(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list[Any]]]:
    """Every list inside `node` with its path (dict keys and list indices)."""
    found: list[tuple[tuple[str, ...], list[Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _lists(value, (*path, str(key)))
    elif isinstance(node, list):
        found.append((path, node))
        for i, value in enumerate(node):
            found += _lists(value, (*path, str(i)))
    return found


# What is left of a result that does not fit even cut down; its length is the smallest
# budget `fit` accepts.
_CUT_WHOLE = dumps({TRUNCATED_KEY: {"omitted_items": {"(result)": 1}, "hint": NARROW_HINT}})
MIN_BUDGET = len(_CUT_WHOLE)


def fit(data: dict[str, Any], budget: int) -> str:
    """`data` as compact JSON of at most `budget` (at least MIN_BUDGET) characters,
    truncated with a marker."""
    budget = max(budget, MIN_BUDGET)
    text = dumps(data)
    if len(text) <= budget:
        return text
    trimmed: dict[str, Any] = json.loads(text)  # a private copy to cut
    omitted: dict[str, int] = {}
    while len(text) > budget:
        cuttable = [(p, lst) for p, lst in _lists(trimmed) if len(lst) > 1]
        if not cuttable:
            break
        path, longest = max(cuttable, key=lambda pl: len(dumps(pl[1])))
        keep = len(longest) // 2
        name = ".".join(path) or "(result)"
        omitted[name] = omitted.get(name, 0) + len(longest) - keep
        del longest[keep:]
        trimmed[TRUNCATED_KEY] = {"omitted_items": omitted, "hint": NARROW_HINT}
        text = dumps(trimmed)
    return text if len(text) <= budget else _CUT_WHOLE
