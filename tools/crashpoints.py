"""Named points where a test may kill payops with SIGKILL, to prove crash recovery.

`crash_point("act:claimed")` does nothing unless the environment variable
`PAYOPS_CRASH_AT` names that point (`act:claimed`, or `act:claimed@2` for its second
pass in this process). Then the process kills itself with SIGKILL on the spot: no
cleanup, no `finally`, exactly what a power cut or an OOM kill leaves behind. Production
never sets the variable, and an unset variable costs one dictionary lookup.

The points, in the order a cycle passes them, are listed in `POINTS`.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Final

CRASH_ENV: Final = "PAYOPS_CRASH_AT"

POINTS: Final = (
    "run:paused",  # the pause is checkpointed; the approval request is not yet recorded
    "approval:answered",  # the answer is recorded (compare-and-set); the graph not resumed
    "act:claimed",  # the ledger claim is committed; the executor not yet called
    "act:executed",  # the executor applied the action; the ledger has no outcome yet
    "act:recorded",  # the ledger holds the outcome; the act node has not returned
    "act:taken_over",  # a reconciler took over an expired claim; the executor not asked
    "learn:recorded",  # the learning store holds the outcome; the learn node not returned
)

_passes: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if `PAYOPS_CRASH_AT` names this point (tests only)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _passes[name] += 1
    if _passes[name] == (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)
