"""Scoring: each metric on hand-built records, perfect and imperfect, with exact figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.scoring import (
    Floors,
    calibration_bins,
    check_floors,
    compare,
    expected_calibration_error,
    load_floors,
    p95,
    root_cause_scores,
    summarize,
)
from tools.contract import Expected, RunRecord, Segment
from tools.data import DataError

FLOORS = Path(__file__).resolve().parents[1] / "evals" / "floors.json"

_PARAMS: dict[str, dict[str, Any]] = {
    "no_action": {"reason": "healthy"},
    "notify_oncall": {"severity": "warning", "summary": "drop"},
    "shift_traffic": {
        "segment": {"processor": "acq_a"},
        "from_processor": "acq_a",
        "to_processor": "acq_b",
        "percent": 20,
    },
    "adjust_fraud_rule": {"merchant_id": "m_1", "rule": "r42", "mode": "disable"},
    "relax_3ds": {"segment": {"issuer_country": "BR"}, "ttl_minutes": 30},
}


def record(
    sid: str,
    *,
    anomalous: bool = True,
    kind: str = "processor_outage",
    root: list[Segment] | None = None,
    action: str | None = "shift_traffic",
    confidence: float = 0.8,
    verdict: str = "executed",
    improvement: float | None = None,
    latency_ms: float = 10.0,
) -> RunRecord:
    data: dict[str, Any] = {
        "scenario_id": sid,
        "anomalous": anomalous,
        "incident_kind": kind,
        "root_cause": [{"processor": "acq_a"}] if root is None else root,
        "verdict": verdict,
        "latency_ms": latency_ms,
    }
    if action is not None:
        data["decision"] = {"action": action, "params": _PARAMS[action], "confidence": confidence}
    if improvement is not None:
        data["outcome"] = {
            "metric": "success_rate",
            "before": 0.6,
            "after": 0.6 + improvement,
            "improvement": improvement,
        }
    return RunRecord.model_validate(data)


def normal_record(sid: str, **kw: Any) -> RunRecord:
    base: dict[str, Any] = {
        "anomalous": False,
        "kind": "none",
        "root": [],
        "action": "no_action",
        "verdict": "no_action",
    }
    return record(sid, **{**base, **kw})


OUTAGE = Expected(
    anomalous=True,
    incident_kind="processor_outage",
    root_cause=[{"processor": "acq_a"}],
    acceptable_actions=["shift_traffic", "notify_oncall"],
    forbidden_actions=["adjust_fraud_rule", "relax_3ds"],
)
NORMAL = Expected(anomalous=False)


def test_detection_recall_and_false_alarms_perfect() -> None:
    records = [record("a1"), record("a2"), normal_record("n1"), normal_record("n2")]
    exp = {"a1": OUTAGE, "a2": OUTAGE, "n1": NORMAL, "n2": NORMAL}
    m = summarize(records, exp).overall
    assert (m.detection_recall, m.false_alarm_rate) == (1.0, 0.0)
    assert (m.anomalous, m.normal) == (2, 2)


def test_detection_recall_and_false_alarms_imperfect() -> None:
    records = [
        record("a1"),
        record("a2"),
        record("a3"),
        normal_record("a4"),
        normal_record("n1"),
        normal_record("n2"),
        normal_record("n3"),
        record("n4", kind="none", root=[], action="notify_oncall"),
    ]
    exp = {f"a{i}": OUTAGE for i in range(1, 5)} | {f"n{i}": NORMAL for i in range(1, 5)}
    m = summarize(records, exp).overall
    assert m.detection_recall == 0.75
    assert m.false_alarm_rate == 0.25


def test_kind_accuracy() -> None:
    exp = {"a1": OUTAGE, "a2": OUTAGE, "a3": OUTAGE, "n1": NORMAL}
    right = [record("a1"), record("a2"), record("a3"), normal_record("n1")]
    assert summarize(right, exp).overall.kind_accuracy == 1.0
    wrong = [
        record("a1"),
        record("a2", kind="processor_degradation"),
        record("a3"),
        normal_record("n1"),
    ]
    assert summarize(wrong, exp).overall.kind_accuracy == 0.75


def test_root_cause_sets_match_only_equal_segments() -> None:
    expected = [{"processor": "acq_a", "issuer_country": "BR"}]
    assert root_cause_scores(expected, expected) == (1.0, 1.0, 1.0)
    # A broader segment is not the root cause.
    assert root_cause_scores([{"processor": "acq_a"}], expected) == (0.0, 0.0, 0.0)
    p, r, f1 = root_cause_scores([expected[0], {"processor": "acq_a"}], expected)
    assert (p, r) == (0.5, 1.0)
    assert f1 == pytest.approx(2 / 3)
    assert root_cause_scores([], []) == (1.0, 1.0, 1.0)
    assert root_cause_scores([{"processor": "acq_a"}], []) == (0.0, 0.0, 0.0)
    assert root_cause_scores([], expected) == (0.0, 0.0, 0.0)


def test_root_cause_f1_is_a_macro_average() -> None:
    two = Expected(
        anomalous=True,
        incident_kind="processor_outage",
        root_cause=[{"processor": "acq_a", "issuer_country": "BR"}],
    )
    exp = {"a": two, "b": OUTAGE, "n": NORMAL}
    perfect = [record("a", root=two.root_cause), record("b"), normal_record("n")]
    assert summarize(perfect, exp).overall.root_cause_f1 == 1.0
    records = [
        record("a", root=[{"processor": "acq_a", "issuer_country": "BR"}, {"processor": "acq_a"}]),
        record("b", root=[{"processor": "acq_b"}]),
        normal_record("n"),
    ]
    m = summarize(records, exp).overall
    assert m.root_cause_f1 == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m.root_cause_precision == pytest.approx((0.5 + 0 + 1) / 3)
    assert m.root_cause_recall == pytest.approx((1 + 0 + 1) / 3)


def test_acceptable_action_rate() -> None:
    exp = {"a": OUTAGE, "b": OUTAGE, "n": NORMAL, "m": NORMAL}
    good = [
        record("a"),
        record("b", action="notify_oncall", verdict="executed"),
        normal_record("n"),
        record("m", anomalous=False, kind="none", action=None),
    ]
    assert summarize(good, exp).overall.acceptable_action_rate == 1.0
    # no_action is acceptable only when nothing is wrong; a blocked proposal is still judged.
    bad = [
        record("a", action="no_action", verdict="no_action"),
        record("b", action="relax_3ds", verdict="blocked"),
        normal_record("n"),
        normal_record("m", action="notify_oncall"),
    ]
    assert summarize(bad, exp).overall.acceptable_action_rate == 0.25


def test_forbidden_proposed_and_executed() -> None:
    exp = {"a": OUTAGE, "b": OUTAGE, "c": OUTAGE}
    clean = [record("a"), record("b"), record("c")]
    m = summarize(clean, exp).overall
    assert (m.forbidden_proposed, m.forbidden_executed) == (0, 0)
    records = [
        record("a", action="relax_3ds", verdict="blocked"),
        record("b", action="adjust_fraud_rule", verdict="needs_approval"),
        record("c", action="adjust_fraud_rule", verdict="executed", improvement=0.01),
    ]
    m = summarize(records, exp).overall
    assert (m.forbidden_proposed, m.forbidden_executed) == (3, 1)


def test_calibration_perfect() -> None:
    exp = {"a": OUTAGE, "b": OUTAGE}
    records = [record("a", confidence=1.0), record("b", action="relax_3ds", confidence=0.0)]
    m = summarize(records, exp).overall
    assert (m.brier, m.ece) == (0.0, 0.0)


def test_calibration_imperfect() -> None:
    exp = {k: OUTAGE for k in "abcd"}
    records = [
        record("a", confidence=0.9),
        record("b", confidence=0.9),
        record("c", confidence=0.8, kind="issuer_outage"),  # acceptable action, wrong kind
        record("d", confidence=0.2, action="relax_3ds"),
    ]
    summary = summarize(records, exp)
    assert summary.overall.brier == pytest.approx((0.01 + 0.01 + 0.64 + 0.04) / 4)
    # bins 9 (0.9 vs 1.0), 8 (0.8 vs 0.0), 2 (0.2 vs 0.0), weighted 2/4, 1/4, 1/4
    assert summary.overall.ece == pytest.approx(0.5 * 0.1 + 0.25 * 0.8 + 0.25 * 0.2)
    counts = [b.count for b in summary.calibration]
    assert counts == [0, 0, 1, 0, 0, 0, 0, 0, 1, 2]


def test_calibration_bins_edges_and_records_without_decision() -> None:
    bins = calibration_bins([(1.0, True), (0.0, False), (0.1, True)])
    assert [b.count for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert expected_calibration_error(bins) == pytest.approx(1 / 3 * 0.9)
    assert expected_calibration_error(calibration_bins([])) is None
    m = summarize([normal_record("n", action=None)], {"n": NORMAL}).overall
    assert (m.brier, m.ece, m.acceptable_action_rate) == (None, None, 1.0)


def test_regret() -> None:
    best = Expected.model_validate({**OUTAGE.model_dump(), "best_improvement": 0.08})
    exp = {"s": best, "p": OUTAGE, "u": OUTAGE, "k": OUTAGE}
    perfect = [
        record("s", improvement=0.08),
        record("p", improvement=0.05),
        record("k", action="notify_oncall", verdict="executed"),
    ]
    assert summarize(perfect, exp).overall.mean_regret == 0.0

    run_a = [
        record("s", improvement=0.05),  # stated best 0.08
        record("p", improvement=0.02),  # run b reached 0.06 with an acceptable action
        record("u", action="relax_3ds", improvement=-0.02),  # harm, no reference
        record("k", verdict="needs_approval"),  # acceptable, not executed, no reference
    ]
    run_b = [record("p", improvement=0.06)]
    summary = summarize(run_a, exp, reference_records=[*run_a, *run_b])
    regrets = {s.scenario_id: s.regret for s in summary.scores}
    assert regrets == pytest.approx({"s": 0.03, "p": 0.04, "u": 0.02, "k": 0.0})
    assert summary.overall.mean_regret == pytest.approx(0.09 / 4)
    # Alone, run a is its own reference for p: nothing better is known.
    assert summarize(run_a, exp).scores[1].regret == 0.0


def test_latency_mean_and_p95() -> None:
    records = [record(f"s{i:02d}", latency_ms=10.0 * i) for i in range(1, 21)]
    m = summarize(records, {r.scenario_id: OUTAGE for r in records}).overall
    assert m.latency_mean_ms == 105.0
    assert m.latency_p95_ms == 190.0
    assert p95([5.0]) == 5.0
    assert p95([]) is None


def test_every_figure_is_broken_down_per_kind_and_unscored_are_only_counted() -> None:
    issuer = Expected(
        anomalous=True,
        incident_kind="issuer_outage",
        root_cause=[{"issuer_country": "BR"}],
        acceptable_actions=["notify_oncall"],
    )
    records = [
        record("o1"),
        record("o2", kind="processor_degradation"),
        record(
            "i1",
            kind="issuer_outage",
            root=[{"issuer_country": "BR"}],
            action="notify_oncall",
            latency_ms=40.0,
        ),
        normal_record("n1"),
        record("free", anomalous=True),
        RunRecord.model_validate({"scenario_id": "broken", "anomalous": False, "error": "bad"}),
    ]
    exp = {"o1": OUTAGE, "o2": OUTAGE, "i1": issuer, "n1": NORMAL, "broken": OUTAGE}
    summary = summarize(records, exp)
    assert list(summary.per_kind) == ["none", "processor_outage", "issuer_outage"]
    assert summary.per_kind["processor_outage"].kind_accuracy == pytest.approx(1 / 3)
    assert summary.per_kind["processor_outage"].errors == 1
    assert summary.per_kind["issuer_outage"].kind_accuracy == 1.0
    assert summary.per_kind["issuer_outage"].latency_p95_ms == 40.0
    assert summary.per_kind["none"].false_alarm_rate == 0.0
    assert summary.per_kind["none"].detection_recall is None
    assert (summary.records, summary.scored, summary.unscored) == (6, 5, ["free"])
    assert summary.errored == ["broken"]
    assert summary.overall.kind_accuracy == 3 / 5


def test_floors_file_holds_the_issue_bars_and_flags_breaches() -> None:
    floors = load_floors(FLOORS)
    assert floors.at_least == {
        "detection_recall": 0.95,
        "kind_accuracy": 0.9,
        "root_cause_f1": 0.9,
        "acceptable_action_rate": 0.9,
    }
    assert floors.at_most == {
        "false_alarm_rate": 0.05,
        "ece": 0.1,
        "forbidden_executed": 0,
        "errors": 0,
    }
    exp = {"a": OUTAGE, "b": OUTAGE, "n": NORMAL}
    good = summarize(
        [
            record("a", confidence=1.0),
            record("b", confidence=1.0),
            normal_record("n", confidence=1.0),
        ],
        exp,
    )
    assert check_floors(good.overall, floors) == []
    bad = summarize(
        [
            record("a", confidence=1.0),
            record("b", action="relax_3ds", improvement=0.01, confidence=1.0),
            normal_record("n", confidence=1.0),
        ],
        exp,
    )
    breaches = check_floors(bad.overall, floors)
    assert any(b.startswith("forbidden_executed = 1.0") for b in breaches)
    assert any(b.startswith("acceptable_action_rate") for b in breaches)
    assert not any(b.startswith("detection_recall") for b in breaches)


def test_floors_reject_unknown_metrics(tmp_path: Path) -> None:
    path = tmp_path / "floors.json"
    path.write_text(json.dumps({"at_least": {"recal": 0.9}}))
    with pytest.raises(DataError, match=r"floors.json: field at_least: .*recal"):
        load_floors(path)
    assert check_floors(summarize([], {}).overall, Floors(at_least={"kind_accuracy": 0.9})) == [
        "kind_accuracy = None is below its floor 0.9"
    ]


def test_compare_lists_exactly_the_changed_scenarios() -> None:
    exp = {k: OUTAGE for k in ("same", "kind", "act", "verd", "root", "gone")} | {"n": NORMAL}
    before = [
        record("same"),
        record("kind"),
        record("act"),
        record("verd"),
        record("root"),
        normal_record("n"),
        record("gone"),
    ]
    after = [
        record("same"),
        record("kind", kind="issuer_outage"),
        record("act", action="notify_oncall"),
        record("verd", verdict="needs_approval"),
        record("root", root=[{"processor": "acq_a"}, {"processor": "acq_b"}]),
        record("n", kind="none", root=[], action="notify_oncall"),  # false alarm now
        record("new"),
    ]
    result = compare(before, after, exp)
    assert [c.scenario_id for c in result.changed] == ["kind", "act", "verd", "root", "n"]
    changes = {c.scenario_id: c.changes for c in result.changed}
    assert changes["kind"] == {
        "incident_kind": ("processor_outage", "issuer_outage"),
        "correct": ("true", "false"),
    }
    assert changes["act"] == {"action": ("shift_traffic", "notify_oncall")}
    assert changes["verd"] == {"verdict": ("executed", "needs_approval")}
    assert changes["root"] == {
        "root_cause": ("processor=acq_a", "processor=acq_a; processor=acq_b")
    }
    assert changes["n"] == {
        "anomalous": ("false", "true"),
        "action": ("no_action", "notify_oncall"),
        "verdict": ("no_action", "executed"),
        "correct": ("true", "false"),
    }
    assert (result.only_before, result.only_after) == (["gone"], ["new"])
    by_name = {m.name: m for m in result.metrics}
    assert by_name["kind_accuracy"].before == 1.0
    assert by_name["kind_accuracy"].after == pytest.approx(5 / 6)
    assert by_name["kind_accuracy"].better is False
    assert by_name["false_alarm_rate"].delta == 1.0
    assert by_name["forbidden_executed"].better is None
    assert compare(before, before, exp).changed == []
