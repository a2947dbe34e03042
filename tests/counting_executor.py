"""A test executor that counts every call it receives, across processes.

It follows the `tools.executor.Executor` contract on its own, independently of
`SimulatedExecutor`: each call is first appended to `calls.log` in its folder (one line,
O_APPEND, so concurrent processes never interleave), and a key is applied at most once,
its outcome kept in `applied/<key>.json` (written beside, then renamed: whole or absent).
A test then asserts the number of calls per key, whatever process made them.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from tools.contract import Decision, Outcome, ScenarioContext
from tools.routes import SegmentSnapshot
from tools.simulator import simulate


class CountingExecutor:
    """The simulator's estimate as outcome; every call logged; a key applied once."""

    def __init__(self, folder: Path, *, stall_s: float = 0.0) -> None:
        self.folder = folder
        self.stall_s = stall_s  # widens the window between claim and record
        (folder / "applied").mkdir(parents=True, exist_ok=True)

    def execute(
        self,
        decision: Decision,
        idempotency_key: str,
        snap: SegmentSnapshot,
        context: ScenarioContext,
    ) -> Outcome:
        """Log the call, then apply the key once (a repeat returns the first outcome)."""
        fd = os.open(self.folder / "calls.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, f"{idempotency_key} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        if self.stall_s:
            time.sleep(self.stall_s)
        done = self.applied(idempotency_key)
        if done is not None:
            return done
        outcome = simulate(decision, snap, context)
        target = self.folder / "applied" / f"{idempotency_key}.json"
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(outcome.model_dump_json(), encoding="utf-8")
        os.replace(tmp, target)
        return outcome

    def applied(self, idempotency_key: str) -> Outcome | None:
        """The outcome applied under the key, or None."""
        path = self.folder / "applied" / f"{idempotency_key}.json"
        if not path.exists():
            return None
        return Outcome.model_validate_json(path.read_text(encoding="utf-8"))


def calls_per_key(folder: Path) -> Counter[str]:
    """How many calls each idempotency key received (empty if none)."""
    log = folder / "calls.log"
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text(encoding="utf-8").splitlines())
