"""The learning store keeps every outcome, aggregates it right, and feeds remedy ranking."""

from __future__ import annotations

import csv
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tools.learning as learning
from tools.contract import Decision, Outcome
from tools.learning import (
    ActionStats,
    LearnedOutcome,
    LearningStore,
    RemedyPrior,
    remedy_adjustment,
)

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
CTX = multiprocessing.get_context("spawn")


def outcome(
    kind: str = "processor_outage",
    action: str = "shift_traffic",
    improvement: float | None = 0.05,
    *,
    verdict: str = "executed",
    key: str | None = None,
    at: datetime = NOW,
    scenario_id: str = "s1",
) -> LearnedOutcome:
    executed = verdict == "executed"
    return LearnedOutcome.model_validate(
        {
            "scenario_id": scenario_id,
            "thread_id": "t1",
            "incident_kind": kind,
            "action": action,
            "segment": {"processor": "acq_a", "issuer_country": "BR"},
            "params": {"percent": 20, "to_processor": "acq_b"} if action == "shift_traffic" else {},
            "verdict": verdict,
            "before": 0.62 if executed else None,
            "after": 0.62 + improvement if executed and improvement is not None else None,
            "improvement": improvement if executed else None,
            "confidence": 0.8,
            "idempotency_key": key,
            "recorded_at": at,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> LearningStore:
    return LearningStore(tmp_path / "learning.sqlite", retention_days=30, clock=lambda: NOW)


@pytest.fixture
def known(store: LearningStore) -> LearningStore:
    for o in [
        outcome("processor_outage", "shift_traffic", 0.06),
        outcome("processor_outage", "shift_traffic", 0.04),
        outcome("processor_outage", "shift_traffic", -0.01),
        outcome("processor_outage", "notify_oncall", 0.0),
        outcome("issuer_outage", "shift_traffic", 0.02),
        outcome("issuer_outage", "shift_traffic", verdict="blocked"),
    ]:
        assert store.record(o)
    return store


def test_stats_by_action(known: LearningStore) -> None:
    by_action = {s.action: s for s in known.stats("action")}
    assert list(by_action) == ["notify_oncall", "shift_traffic"]
    shift = by_action["shift_traffic"]
    assert (shift.count, shift.executed) == (5, 4)  # the blocked decision counts, unmeasured
    assert shift.success_rate == pytest.approx(3 / 4)
    assert shift.mean_improvement == pytest.approx((0.06 + 0.04 - 0.01 + 0.02) / 4)
    assert shift.best == pytest.approx(0.06)
    assert shift.worst == pytest.approx(-0.01)
    notify = by_action["notify_oncall"]
    assert (notify.count, notify.success_rate, notify.mean_improvement) == (1, 0.0, 0.0)


def test_stats_by_incident_kind_and_pair(known: LearningStore) -> None:
    by_kind = {s.incident_kind: s for s in known.stats("incident_kind")}
    outage = by_kind["processor_outage"]
    assert (outage.count, outage.executed, outage.action) == (4, 4, None)
    assert outage.success_rate == pytest.approx(2 / 4)
    assert outage.mean_improvement == pytest.approx((0.06 + 0.04 - 0.01 + 0.0) / 4)
    issuer = by_kind["issuer_outage"]
    assert (issuer.count, issuer.executed, issuer.success_rate) == (2, 1, 1.0)

    pairs = {(s.incident_kind, s.action): s for s in known.stats("kind_action")}
    assert set(pairs) == {
        ("issuer_outage", "shift_traffic"),
        ("processor_outage", "notify_oncall"),
        ("processor_outage", "shift_traffic"),
    }
    assert pairs[("processor_outage", "shift_traffic")].success_rate == pytest.approx(2 / 3)


def test_stats_of_a_group_never_executed_are_none(store: LearningStore) -> None:
    store.record(outcome(action="relax_3ds", verdict="blocked"))
    assert store.stats("action") == [ActionStats(None, "relax_3ds", 1, 0, None, None, None, None)]


def test_retention_prunes_old_rows_only(tmp_path: Path) -> None:
    path = tmp_path / "learning.sqlite"
    store = LearningStore(path, retention_days=30, clock=lambda: NOW)
    for days, sid in [(31, "old"), (29, "recent"), (0, "today")]:
        store.record(outcome(at=NOW - timedelta(days=days), scenario_id=sid))
    assert store.count() == 3
    assert store.prune(NOW) == 1
    assert store.prune(NOW) == 0
    assert _scenario_ids(store, tmp_path) == ["recent", "today"]
    store.close()

    # Opening the store prunes too: two days later "recent" is 31 days old.
    later = LearningStore(path, retention_days=30, clock=lambda: NOW + timedelta(days=2))
    assert _scenario_ids(later, tmp_path) == ["today"]


def _scenario_ids(store: LearningStore, tmp_path: Path) -> list[str]:
    out = tmp_path / "ids.json"
    store.export(out, "json")
    return [row["scenario_id"] for row in json.loads(out.read_text())]


def test_export_json_round_trips(known: LearningStore, tmp_path: Path) -> None:
    originals = _originals()
    out = tmp_path / "export" / "outcomes.json"
    assert known.export(out, "json") == len(originals)
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert [row["id"] for row in rows] == list(range(1, len(originals) + 1))
    assert [row["success"] for row in rows] == [True, True, False, False, True, None]
    fields = set(LearnedOutcome.model_fields)
    assert [LearnedOutcome.model_validate({k: row[k] for k in fields}) for row in rows] == originals


def test_export_csv_round_trips(known: LearningStore, tmp_path: Path) -> None:
    out = tmp_path / "outcomes.csv"
    assert known.export(out, "csv") == 6
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def parse(row: dict[str, str]) -> LearnedOutcome:
        floats = ("before", "after", "improvement", "confidence")
        data: dict[str, Any] = {k: row[k] for k in LearnedOutcome.model_fields}
        for name in floats:
            data[name] = float(row[name]) if row[name] else None
        data["segment"] = json.loads(row["segment"])
        data["params"] = json.loads(row["params"])
        data["idempotency_key"] = row["idempotency_key"] or None
        return LearnedOutcome.model_validate(data, strict=False)

    assert [parse(row) for row in rows] == _originals()
    assert [row["success"] for row in rows] == ["1", "1", "0", "0", "1", ""]


def _originals() -> list[LearnedOutcome]:
    return [
        outcome("processor_outage", "shift_traffic", 0.06),
        outcome("processor_outage", "shift_traffic", 0.04),
        outcome("processor_outage", "shift_traffic", -0.01),
        outcome("processor_outage", "notify_oncall", 0.0),
        outcome("issuer_outage", "shift_traffic", 0.02),
        outcome("issuer_outage", "shift_traffic", verdict="blocked"),
    ]


def test_failed_export_leaves_the_previous_file(
    known: LearningStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "outcomes.csv"
    out.write_text("previous export\n")

    def half_then_fail(f: Any, rows: Any) -> int:
        f.write("id,recorded_at\n1,")
        raise OSError("disk full")

    monkeypatch.setattr(learning, "_write_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        known.export(out, "csv")
    assert out.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_same_idempotency_key_is_stored_once(store: LearningStore) -> None:
    assert store.record(outcome(key="ledger-key-1"))
    assert not store.record(outcome(key="ledger-key-1", improvement=0.09))
    assert store.record(outcome(key="ledger-key-2"))
    # Decisions that were not executed carry no key and are all kept.
    assert store.record(outcome(verdict="blocked"))
    assert store.record(outcome(verdict="blocked"))
    assert store.count() == 4
    assert store.stats("action")[0].mean_improvement == pytest.approx(0.05)


def _write_many(path: str, n: int, tag: str, barrier: Barrier) -> None:
    store = LearningStore(Path(path), retention_days=30)
    barrier.wait()
    for i in range(n):
        store.record(outcome(key=f"{tag}-{i}", at=datetime.now(UTC)))
    store.close()


def test_two_processes_writing_concurrently_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "learning.sqlite")
    n, m = 200, 150
    barrier = CTX.Barrier(2)
    procs = [
        CTX.Process(target=_write_many, args=(path, n, "a", barrier)),
        CTX.Process(target=_write_many, args=(path, m, "b", barrier)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert LearningStore(Path(path), retention_days=30).count() == n + m


def test_repeated_failure_ranks_below_repeated_success(store: LearningStore) -> None:
    for _ in range(6):
        store.record(outcome("processor_outage", "shift_traffic", 0.05))
        store.record(outcome("processor_outage", "enable_retry", 0.0))  # did nothing
        store.record(outcome("processor_outage", "failover_processor", -0.02))  # made it worse
    ctx = store.learning_context("processor_outage")
    good = ctx.adjustment("processor_outage", "shift_traffic")
    useless = ctx.adjustment("processor_outage", "enable_retry")
    harmful = ctx.adjustment("processor_outage", "failover_processor")
    unseen = ctx.adjustment("processor_outage", "notify_oncall")
    assert good > unseen == 0.0 > useless > harmful
    assert ctx.prior("processor_outage", "shift_traffic").count == 6
    assert ctx.prior("processor_outage", "notify_oncall") == RemedyPrior(
        "processor_outage", "notify_oncall"
    )

    # Equal simulator estimates: past outcomes decide the order.
    estimate = 0.04
    ranked = sorted(
        ["enable_retry", "failover_processor", "shift_traffic"],
        key=lambda a: estimate + ctx.adjustment("processor_outage", a),
        reverse=True,
    )
    assert ranked == ["shift_traffic", "enable_retry", "failover_processor"]


def test_a_couple_of_outcomes_cannot_dominate_the_simulator(store: LearningStore) -> None:
    store.record(outcome("issuer_outage", "enable_retry", 0.9))
    store.record(outcome("issuer_outage", "enable_retry", 0.8))
    ctx = store.learning_context()
    bonus = ctx.adjustment("issuer_outage", "enable_retry")
    assert 0 < bonus <= learning.MAX_ADJUSTMENT * 2 / (2 + learning.PRIOR_STRENGTH)
    # A never-tried remedy the simulator rates 2 pp higher still ranks first.
    other = ctx.adjustment("issuer_outage", "shift_traffic")
    assert 0.06 + other > 0.04 + bonus


def test_learning_context_for_one_kind_ignores_other_kinds(known: LearningStore) -> None:
    ctx = known.learning_context("issuer_outage")
    assert {(p.incident_kind, p.action) for p in ctx.priors} == {("issuer_outage", "shift_traffic")}
    assert ctx.prior("issuer_outage", "shift_traffic").count == 1  # the blocked one is not
    assert ctx.adjustment("processor_outage", "shift_traffic") == 0.0


@given(
    n=st.integers(min_value=0, max_value=10_000),
    frac=st.floats(min_value=0, max_value=1),
    mean=st.floats(min_value=-1, max_value=1),
)
def test_adjustment_is_bounded_by_evidence(n: int, frac: float, mean: float) -> None:
    prior = RemedyPrior("processor_outage", "shift_traffic", n, round(frac * n), mean)
    c, k = learning.MAX_ADJUSTMENT, learning.PRIOR_STRENGTH
    assert abs(remedy_adjustment(prior)) <= c * n / (n + k) + 1e-12


def test_outcome_of_a_decision() -> None:
    decision = Decision(
        action="shift_traffic",
        params={
            "segment": {"processor": "acq_a", "issuer_country": "BR"},
            "from_processor": "acq_a",
            "to_processor": "acq_b",
            "percent": 20,
        },
        confidence=0.86,
    )
    effect = Outcome(metric="success_rate", before=0.62, after=0.68, improvement=0.06)
    learned = LearnedOutcome.of(
        decision,
        "executed",
        effect,
        scenario_id="proc-outage-br-001",
        incident_kind="processor_outage",
        thread_id="t1",
        idempotency_key="k1",
    )
    assert learned.segment == {"processor": "acq_a", "issuer_country": "BR"}
    assert (learned.improvement, learned.success, learned.idempotency_key) == (0.06, True, "k1")

    # An outcome that was not executed (blocked at the claim, say) is not learned from.
    blocked = LearnedOutcome.of(
        decision, "blocked", effect, scenario_id="proc-outage-br-001", incident_kind="none"
    )
    assert (blocked.improvement, blocked.success) == (None, None)
