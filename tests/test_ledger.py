"""The action ledger executes each action at most once, across processes and crashes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from tools.ledger import (
    ActionLedger,
    InDoubtError,
    LedgerEntry,
    LedgerError,
)
from tools.sql import SQLITE_INTEGRITY_CHECK

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
PARAMS = {"segment": {"processor": "acq_a"}, "from_processor": "acq_a", "to_processor": "acq_b"}
# spawn: children start clean (no inherited connections or pytest-xdist threads).
CTX = multiprocessing.get_context("spawn")


def _claim(ledger: ActionLedger, key: str) -> bool:
    return ledger.claim(
        key, thread_id="t1", scenario_id="s1", action="shift_traffic", params=PARAMS
    )


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


def test_run_once_executes_once_then_returns_stored_outcome(ledger: ActionLedger) -> None:
    calls: list[int] = []

    def execute() -> dict[str, Any]:
        calls.append(1)
        return {"improvement": 0.06}

    kwargs: dict[str, Any] = {
        "thread_id": "t1",
        "scenario_id": "s1",
        "action": "shift_traffic",
        "params": PARAMS,
    }
    first = ledger.run_once("k1", execute=execute, **kwargs)
    again = ledger.run_once("k1", execute=execute, **kwargs)
    assert calls == [1]
    assert first.executed_now and first.outcome == {"improvement": 0.06}
    assert not again.executed_now and again.outcome == first.outcome


def test_run_once_hands_an_in_doubt_claim_to_reconcile(ledger: ActionLedger) -> None:
    def boom() -> dict[str, Any]:
        raise RuntimeError("processor API timed out")

    kwargs: dict[str, Any] = {
        "thread_id": "t1",
        "scenario_id": "s1",
        "action": "shift_traffic",
        "params": PARAMS,
    }
    with pytest.raises(RuntimeError):
        ledger.run_once("k1", execute=boom, **kwargs)
    # The action may have half-happened: it stays claimed, and is never executed again.
    with pytest.raises(InDoubtError, match="k1"):
        ledger.run_once("k1", execute=boom, **kwargs)

    seen: list[LedgerEntry] = []

    def reconcile(entry: LedgerEntry) -> dict[str, Any]:
        seen.append(entry)
        return {"improvement": 0.05, "reconciled": True}

    result = ledger.run_once("k1", execute=boom, reconcile=reconcile, **kwargs)
    assert result.reconciled and not result.executed_now
    assert result.outcome == {"improvement": 0.05, "reconciled": True}
    assert seen[0].params == PARAMS
    stored = ledger.get("k1")
    assert stored is not None and stored.status == "executed"


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
