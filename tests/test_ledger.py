"""The action ledger executes each action at most once, across processes and crashes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from tools.contract import Violation
from tools.ledger import (
    ActionLedger,
    Admission,
    InProgressError,
    LedgerEntry,
    LedgerError,
    RunOnceResult,
    execute_once,
    process_owner,
)
from tools.sql import SQLITE_INTEGRITY_CHECK

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
PARAMS = {"segment": {"processor": "acq_a"}, "from_processor": "acq_a", "to_processor": "acq_b"}
# spawn: children start clean (no inherited connections or pytest-xdist threads).
CTX = multiprocessing.get_context("spawn")


def _claim(ledger: ActionLedger, key: str) -> bool:
    return ledger.claim(
        key, thread_id="t1", scenario_id="s1", action="shift_traffic", params=PARAMS
    ).won


@pytest.fixture
def ledger(tmp_path: Path) -> ActionLedger:
    return ActionLedger(tmp_path / "ledger.sqlite", clock=lambda: NOW)


def test_first_claim_wins_and_outcome_is_returned_on_repeat(ledger: ActionLedger) -> None:
    assert _claim(ledger, "k1")
    entry = ledger.get("k1")
    assert entry is not None and entry.status == "claimed" and entry.in_doubt
    assert entry.params == PARAMS and entry.outcome is None and entry.claimed_at == NOW

    assert ledger.record_outcome("k1", {"before": 0.62, "after": 0.68, "improvement": 0.06})
    # A repeated or resumed run cannot claim again and finds the stored outcome.
    assert not _claim(ledger, "k1")
    done = ledger.get("k1")
    assert done is not None and done.status == "executed" and not done.in_doubt
    assert done.outcome == {"before": 0.62, "after": 0.68, "improvement": 0.06}
    assert ledger.get("never-claimed") is None


def test_claimed_entry_without_outcome_is_not_claimable_again(ledger: ActionLedger) -> None:
    # The crash between claim and record: a second claim must not look like a fresh win.
    assert _claim(ledger, "k1")
    assert not _claim(ledger, "k1")
    assert [e.idempotency_key for e in ledger.in_doubt()] == ["k1"]


def test_record_outcome_is_idempotent_first_outcome_wins(ledger: ActionLedger) -> None:
    _claim(ledger, "k1")
    assert ledger.record_outcome("k1", {"improvement": 0.06})
    assert not ledger.record_outcome("k1", {"improvement": -0.5})
    entry = ledger.get("k1")
    assert entry is not None and entry.outcome == {"improvement": 0.06}
    assert ledger.in_doubt() == []


def test_record_outcome_without_claim_is_an_error(ledger: ActionLedger) -> None:
    with pytest.raises(LedgerError, match="no claim"):
        ledger.record_outcome("ghost", {"improvement": 0.1})


KWARGS: dict[str, Any] = {
    "thread_id": "t1",
    "scenario_id": "s1",
    "action": "shift_traffic",
    "params": PARAMS,
}


class Executor:
    """A stand-in executor: counts calls, remembers what it applied, can fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.journal: dict[str, dict[str, Any]] = {}
        self.fail = False

    def execute(self, key: str) -> dict[str, Any]:
        self.calls.append(key)
        if self.fail:
            raise RuntimeError("processor API timed out")
        return self.journal.setdefault(key, {"improvement": 0.06})

    def run(self, ledger: ActionLedger, key: str, **extra: Any) -> RunOnceResult:
        return execute_once(
            ledger,
            key,
            execute=lambda: self.execute(key),
            applied=lambda: self.journal.get(key),
            **KWARGS,
            **extra,
        )


def test_execute_once_executes_once_then_returns_stored_outcome(ledger: ActionLedger) -> None:
    executor = Executor()
    first = executor.run(ledger, "k1")
    again = executor.run(ledger, "k1")
    assert executor.calls == ["k1"]
    assert first.executed_now and first.outcome == {"improvement": 0.06}
    assert not again.executed_now and again.outcome == first.outcome


def test_a_failed_call_is_reconciled_by_asking_the_executor_never_by_executing_again(
    ledger: ActionLedger,
) -> None:
    executor = Executor()
    executor.journal["k1"] = {"improvement": 0.05}  # the call landed, then the reply was lost
    executor.fail = True
    with pytest.raises(RuntimeError):
        executor.run(ledger, "k1")
    entry = ledger.get("k1")
    assert entry is not None and entry.in_doubt and not entry.lease_live(NOW)  # released
    executor.fail = False
    settled = executor.run(ledger, "k1")
    assert settled.reconciled and not settled.executed_now
    assert settled.outcome == {"improvement": 0.05}
    assert executor.calls == ["k1"]  # asked, not executed again
    stored = ledger.get("k1")
    assert stored is not None and stored.status == "executed"


def test_a_claim_the_executor_never_applied_is_executed_by_the_reconciler(
    ledger: ActionLedger,
) -> None:
    executor = Executor()
    executor.fail = True
    with pytest.raises(RuntimeError):
        executor.run(ledger, "k1")  # failed before anything was applied
    executor.fail = False
    settled = executor.run(ledger, "k1")
    assert settled.reconciled and settled.executed_now
    assert settled.outcome == {"improvement": 0.06}
    assert executor.calls == ["k1", "k1"]  # the first call applied nothing


def _held_claim(path: Path, owner: str, clock: datetime) -> ActionLedger:
    other = ActionLedger(path, clock=lambda: clock, owner=owner, lease=timedelta(minutes=5))
    assert other.claim("k1", **KWARGS).won
    return other


def test_a_live_owners_claim_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _held_claim(path, process_owner(), NOW).close()  # this very process: alive
    ledger = ActionLedger(path, clock=lambda: NOW + timedelta(minutes=1), owner="me")
    executor = Executor()
    with pytest.raises(InProgressError, match="being executed by"):
        executor.run(ledger, "k1", wait=timedelta(0))
    assert executor.calls == []
    entry = ledger.get("k1")
    assert entry is not None and entry.in_doubt


def test_an_expired_lease_is_taken_over_and_reconciled(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _held_claim(path, "elsewhere:4242:cafe", NOW).close()  # another host: only the lease tells
    executor = Executor()
    before_expiry = ActionLedger(path, clock=lambda: NOW + timedelta(minutes=4), owner="me")
    with pytest.raises(InProgressError):
        executor.run(before_expiry, "k1", wait=timedelta(0))
    after_expiry = ActionLedger(path, clock=lambda: NOW + timedelta(minutes=6), owner="me")
    settled = executor.run(after_expiry, "k1")
    assert settled.reconciled and executor.calls == ["k1"]


def test_a_dead_owners_claim_is_reconciled_at_once(tmp_path: Path) -> None:
    proc = CTX.Process(target=_sleep)
    proc.start()
    assert proc.pid is not None
    dead = f"{socket.gethostname()}:{proc.pid}:0000"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=60)
    path = tmp_path / "ledger.sqlite"
    _held_claim(path, dead, NOW).close()
    ledger = ActionLedger(path, clock=lambda: NOW, owner="me")  # the lease still runs
    settled = Executor().run(ledger, "k1", wait=timedelta(0))
    assert settled.reconciled and settled.executed_now


def _sleep() -> None:
    time.sleep(60)


def test_the_admission_runs_inside_the_claim_and_a_refusal_claims_nothing(
    ledger: ActionLedger,
) -> None:
    seen: list[list[str]] = []

    def check(entries: Sequence[LedgerEntry]) -> list[Violation]:
        seen.append([e.idempotency_key for e in entries])
        return [Violation(rule="segment_cooldown", detail="busy")] if entries else []

    admission = Admission(since=NOW - timedelta(hours=1), check=check)
    executor = Executor()
    assert executor.run(ledger, "k1", admission=admission).executed_now
    refused = executor.run(ledger, "k2", admission=admission)
    assert refused.refused == [Violation(rule="segment_cooldown", detail="busy")]
    assert ledger.get("k2") is None and executor.calls == ["k1"]
    assert seen == [[], ["k1"]]


def _race(path: str, keys: int, barrier: Barrier, results: Any) -> None:
    ledger = ActionLedger(Path(path))
    won = []
    for k in range(keys):
        barrier.wait()  # both processes claim key k at the same moment
        if _claim(ledger, f"key-{k}"):
            won.append(k)
    results.put(won)
    ledger.close()


def test_two_processes_racing_for_the_same_keys_each_key_won_once(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite")  # both open a fresh file: schema creation races too
    keys = 40
    barrier = CTX.Barrier(2)
    results = CTX.Queue()
    procs = [CTX.Process(target=_race, args=(path, keys, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    won = [results.get(timeout=60), results.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(won[0] + won[1]) == list(range(keys))  # every key once, never twice


def _claim_until_killed(path: str, progress: Synchronized[int]) -> None:
    ledger = ActionLedger(Path(path))
    i = 0
    while True:
        key = f"key-{i}"
        _claim(ledger, key)
        if i % 2 == 0:
            ledger.record_outcome(key, {"i": i})
        progress.value = i + 1  # set only after the writes above committed
        i += 1


def test_ledger_survives_sigkill_during_claims(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    progress = CTX.Value("i", 0)
    proc = CTX.Process(target=_claim_until_killed, args=(str(path), progress))
    proc.start()
    deadline = time.monotonic() + 60
    while progress.value < 40 and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.01)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    done = progress.value
    assert done >= 40

    with sqlite3.connect(path) as raw:
        assert raw.execute(SQLITE_INTEGRITY_CHECK).fetchone() == ("ok",)
    ledger = ActionLedger(path)
    for i in range(done):
        entry = ledger.get(f"key-{i}")
        assert entry is not None, f"completed claim key-{i} lost"
        if i % 2 == 0:
            assert entry.status == "executed" and entry.outcome == {"i": i}
    # The write in flight when the process died is whole or absent, never half-written.
    cut = ledger.get(f"key-{done}")
    assert cut is None or cut.params == PARAMS
    if cut is not None and cut.status == "executed":
        assert cut.outcome == {"i": done}
