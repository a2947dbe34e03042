"""Policy is decided by meaning, never by spelling (docs/identifiers.md).

Processors, segments, decline codes and change kinds reach guard in many spellings: other
case, stray whitespace, full-width forms, look-alike letters from other scripts, `4` for
`04`, `frm_rule` for a fraud rule. Each test here failed on the commit before identifier
normalisation: a spelling slipped a decision past a limit.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import ValidationError

from agent.runner import run_scenario
from tools.contract import (
    Decision,
    ProcessorInfo,
    RecentAction,
    RecentChange,
    RunRecord,
    ScenarioContext,
    Segment,
)
from tools.decline_codes import canonical_code, code_class
from tools.generate import GenerateOptions, generate_scenario
from tools.guardrails import GuardInput, GuardLimits, GuardVerdict, evaluate
from tools.identifiers import identifier_key, resolve_identifier, same_identifier
from tools.routes import RouteStats, SegmentSnapshot
from tools.simulator import simulate

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SEG: Segment = {"processor": "acq_a", "issuer_country": "BR"}
LIMITS = GuardLimits()
LIBRARY = Path(__file__).resolve().parent.parent / "evals" / "scenarios"
CYRILLIC_A = "\u0430"  # looks like Latin "a"


def _route(name: str, attempts: int, approved: int, baseline_approved: int = -1) -> RouteStats:
    """A route with 5x its current attempts in the baseline, at the same rate unless given."""
    base = attempts * 5
    kept = base * approved // attempts if baseline_approved < 0 else baseline_approved
    return RouteStats(name, attempts, approved, 0, base, kept)


def _snap(
    routes: dict[str, RouteStats] | None = None, codes: dict[str, int] | None = None
) -> SegmentSnapshot:
    routes = routes or {
        "acq_a": _route("acq_a", 1000, 600, 4500),  # the source, in trouble
        "acq_b": _route("acq_b", 800, 720),
        "acq_c": _route("acq_c", 500, 300),
    }
    return SegmentSnapshot(
        segment=dict(SEG),
        attempts=1000,
        approved=600,
        baseline_attempts=5000,
        baseline_approved=4500,
        decline_codes=MappingProxyType(codes or {"timeout": 300, "91": 40, "51": 30, "04": 30}),
        three_ds_failed=0,
        total_attempts=20_000,
        routes=MappingProxyType(routes),
    )


def _context(processors: dict[str, bool] | None = None, **kw: Any) -> ScenarioContext:
    names = processors if processors is not None else {"acq_a": False, "acq_b": True, "acq_c": True}
    return ScenarioContext(processors={n: ProcessorInfo(healthy=h) for n, h in names.items()}, **kw)


def _verdict(
    action: str,
    params: dict[str, Any],
    *,
    snap: SegmentSnapshot | None = None,
    context: ScenarioContext | None = None,
    root_cause: tuple[Segment, ...] = (SEG,),
) -> GuardVerdict:
    decision = Decision(action=action, params=params, confidence=0.9)
    inp = GuardInput(
        decision=decision,
        snapshot=snap or _snap(),
        evidence_attempts=1000,
        context=context or _context(),
        now=NOW,
        anomaly_start=START,
        root_cause=root_cause,
    )
    return evaluate(inp, LIMITS)


def _shift(to: str, **over: Any) -> dict[str, Any]:
    return {"segment": SEG, "from_processor": "acq_a", "to_processor": to, "percent": 20, **over}


def _rules(verdict: GuardVerdict) -> set[str]:
    return {v.rule for v in verdict.violations}


# ---------------------------------------------------------------------------------------
# The rules themselves.


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("acq_b", "ACQ_B ", True),
        ("acq_b", " acq_b\t", True),
        ("acq_b", "ａｃｑ＿ｂ", True),  # full-width forms fold under NFKC
        ("merchant 12", "merchant   12", True),
        ("acq_b", "acq_b\u200b", False),  # a zero-width space is a character
        ("acq_a", f"acq_{CYRILLIC_A}", False),  # a look-alike letter is another letter
        ("Straße", "STRASSE", True),  # case folding, not just lower()
    ],
)
def test_identifiers_are_the_same_by_the_written_rules(a: str, b: str, same: bool) -> None:
    assert same_identifier(a, b) is same
    assert (identifier_key(a) == identifier_key(b)) is same


def test_resolution_finds_the_known_spelling_and_fails_closed() -> None:
    known = ["acq_a", "acq_b"]
    assert resolve_identifier(" ACQ_B", known) == "acq_b"
    assert resolve_identifier(f"acq_{CYRILLIC_A}", known) is None
    assert resolve_identifier("acq_a", ["acq_a", "ACQ_A"]) is None  # ambiguous


def test_decision_identifiers_are_kept_normalized() -> None:
    decision = Decision(
        action="enable_retry",
        params={
            "segment": {" processor ": " ａｃｑ_a\t"},
            "decline_codes": ["4", " 04", "MAC 03"],
            "max_attempts": 2,
            "backup_processor": "acq_b  ",
        },
        confidence=0.9,
    )
    assert decision.params["segment"] == {"processor": "acq_a"}
    assert decision.params["decline_codes"] == ["04", "MAC03"]
    assert decision.params["backup_processor"] == "acq_b"


def test_a_context_naming_one_processor_twice_is_an_error() -> None:
    with pytest.raises(ValidationError, match="are one identifier"):
        ScenarioContext.model_validate(
            {"processors": {"acq_a": {"healthy": True}, "ACQ_A ": {"healthy": False}}}
        )


# ---------------------------------------------------------------------------------------
# Processors: health by meaning, unknown is not healthy.


@pytest.mark.parametrize("spelling", ["ACQ_B", "acq_b ", "ａｃｑ_ｂ", " Acq_B\t"])
def test_a_processor_spelled_differently_in_the_context_keeps_its_health(spelling: str) -> None:
    context = _context({"acq_a": False, spelling: False, "acq_c": True})
    verdict = _verdict("shift_traffic", _shift("acq_b"), context=context)
    assert "target_healthy" in _rules(verdict)
    assert verdict.status == "blocked"


def test_a_processor_the_context_does_not_list_is_not_healthy() -> None:
    verdict = _verdict(
        "shift_traffic", _shift("acq_b"), context=_context({"acq_a": False, "acq_c": True})
    )
    assert "target_healthy" in _rules(verdict)


def test_a_look_alike_processor_in_the_data_receives_no_traffic() -> None:
    look_alike = f"acq_b{CYRILLIC_A}"
    routes = {
        "acq_a": _route("acq_a", 1000, 600, 4500),
        look_alike: _route(look_alike, 800, 790),  # the best route, but nobody knows it
    }
    context = _context({"acq_a": False, "acq_ba": True})
    verdict = _verdict("shift_traffic", _shift(look_alike), snap=_snap(routes), context=context)
    assert "target_healthy" in _rules(verdict)
    # the Latin spelling is a processor the data does not carry
    verdict = _verdict("shift_traffic", _shift("acq_ba"), snap=_snap(routes), context=context)
    assert {"processor_serves_segment", "target_healthy"} <= _rules(verdict)


def test_without_processor_context_the_data_decides_health() -> None:
    falling = {
        "acq_a": _route("acq_a", 1000, 600, 4500),
        "acq_b": _route("acq_b", 800, 700, 3900),  # 97.5% -> 87.5% on the segment
    }
    verdict = _verdict("shift_traffic", _shift("acq_b"), snap=_snap(falling), context=_context({}))
    assert "target_healthy" in _rules(verdict)
    steady = {"acq_a": falling["acq_a"], "acq_b": _route("acq_b", 800, 700)}
    verdict = _verdict("shift_traffic", _shift("acq_b"), snap=_snap(steady), context=_context({}))
    assert verdict.status == "approved", verdict


def test_one_processor_in_two_spellings_is_not_a_move() -> None:
    verdict = _verdict("shift_traffic", _shift("ACQ_A "))
    assert "distinct_processors" in _rules(verdict)


def test_cooldown_sees_an_action_on_the_same_segment_spelled_differently() -> None:
    earlier = RecentAction(
        action="enable_retry",
        params={"segment": {"issuer_country": "br "}, "decline_codes": ["91"], "max_attempts": 2},
        ts=NOW - timedelta(minutes=5),
    )
    verdict = _verdict("shift_traffic", _shift("acq_b"), context=_context(recent_actions=[earlier]))
    assert "segment_cooldown" in _rules(verdict)


# ---------------------------------------------------------------------------------------
# Decline codes: by meaning, unknown never retried.


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("4", "04"), ("057", "57"), (" 41", "41"), ("r0", "R0"), ("MAC 03", "MAC03"),
     ("mac-21", "MAC21"), ("０４", "04"), ("1a", "1A"), ("Processing Error", "processing_error"),
     ("TIMEOUT", "timeout")],
)  # fmt: skip
def test_codes_have_one_canonical_spelling(spelling: str, canonical: str) -> None:
    assert canonical_code(spelling) == canonical


@pytest.mark.parametrize("code", ["4", "r0", " 41", "057", "MAC 03", "mac21", "０４", "R 1"])
def test_never_retry_codes_are_refused_in_any_spelling(code: str) -> None:
    params = {"segment": SEG, "decline_codes": ["timeout", code], "max_attempts": 2}
    verdict = _verdict("enable_retry", params)
    assert "retry_never_codes" in _rules(verdict), (code, verdict)


@pytest.mark.parametrize("code", ["zz_unheard_of", "frm_decline", "??"])
def test_unknown_and_fraud_codes_are_never_retried(code: str) -> None:
    params = {"segment": SEG, "decline_codes": ["timeout", code], "max_attempts": 2}
    assert "retry_never_codes" in _rules(_verdict("enable_retry", params))


def test_insufficient_funds_is_recognised_in_any_spelling() -> None:
    params = {
        "segment": SEG,
        "decline_codes": ["timeout", "051"],
        "max_attempts": 2,
        "backup_processor": "acq_b",
    }
    assert "retry_no_cross_processor_51" in _rules(_verdict("enable_retry", params))


def test_codes_in_the_data_are_counted_by_meaning() -> None:
    # force_3ds needs 1A declines on the segment; the data spells them "1a"
    snap = _snap(codes={"timeout": 300, "1a": 25})
    assert "force_3ds_needs_1a" not in _rules(
        _verdict("force_3ds", {"segment": SEG, "ttl_minutes": 60}, snap=snap)
    )
    assert code_class(" 96") == "technical"


# ---------------------------------------------------------------------------------------
# Change kinds: a closed vocabulary, unknown means a human decides.


def _change(kind: str, **over: Any) -> RecentChange:
    fields: dict[str, Any] = {
        "ts": START - timedelta(minutes=10),
        "kind": kind,
        "target": {"issuer_country": "BR"},
        "version": "r42",
    }
    fields.update(over)
    return RecentChange.model_validate(fields)


def _rollback(change: RecentChange, **kw: Any) -> GuardVerdict:
    params = {"change": change.model_dump(mode="json")}
    return _verdict("rollback_config", params, context=_context(recent_changes=[change]), **kw)


@pytest.mark.parametrize(
    "kind", ["fraud_rule", "frm_rule", "risk_rule", "velocity_rule", "Fraud Rule", "FRM-Rule"]
)
def test_every_fraud_rule_rollback_needs_a_human(kind: str) -> None:
    verdict = _rollback(_change(kind))
    assert verdict.status == "needs_approval", verdict
    assert any(
        r.startswith("fraud_rule_rollback_needs_human") for r in verdict.reasons_for_approval
    )


@pytest.mark.parametrize("kind", ["pricing_tweak", "fraud", "misc"])
def test_a_change_kind_outside_the_vocabulary_needs_a_human(kind: str) -> None:
    verdict = _rollback(_change(kind))
    assert verdict.status == "needs_approval", verdict
    assert any("rollback_unknown_change_kind" in r for r in verdict.reasons_for_approval)


def test_a_known_harmless_change_kind_rolls_back_without_a_human() -> None:
    assert _rollback(_change("Routing Config")).status == "approved"


@pytest.mark.parametrize("country", ["GB", "gb ", "FR", "ＤＥ"])
def test_rolling_back_a_3ds_policy_where_sca_applies_is_blocked(country: str) -> None:
    change = _change("3ds_exemption", target={"issuer_country": country})
    verdict = _rollback(change, root_cause=({"issuer_country": country},))
    assert "rollback_3ds_sca" in _rules(verdict)
    assert verdict.status == "blocked"


def test_rolling_back_a_3ds_policy_outside_sca_needs_a_human() -> None:
    verdict = _rollback(_change("sca_exemption", target={"issuer_country": "BR"}))
    assert verdict.status == "needs_approval"


def test_an_old_change_cannot_be_rolled_back() -> None:
    verdict = _rollback(_change("routing_config", ts=START - timedelta(hours=5)))
    assert "rollback_recent" in _rules(verdict)


def test_a_change_on_another_segment_cannot_be_rolled_back() -> None:
    change = _change("routing_config", target={"merchant_id": "m_99"})
    verdict = _rollback(change, root_cause=({"merchant_id": "m_12"},))
    assert "rollback_touches_incident" in _rules(verdict)


def test_the_simulator_reads_a_fraud_rule_by_its_class() -> None:
    snap = _snap(codes={"frm_decline": 200, "timeout": 100})
    outcomes = [
        simulate(
            Decision(
                action="rollback_config",
                params={"change": _change(kind).model_dump(mode="json")},
                confidence=0.9,
            ),
            snap,
            _context(),
        )
        for kind in ("fraud_rule", "velocity_rule")
    ]
    assert outcomes[0].after == outcomes[1].after
    assert "fraud-rule declines released" in str(outcomes[1].model_extra)


# ---------------------------------------------------------------------------------------
# End to end: a scenario whose context or data spells things its own way.


def _generated(tmp_path: Path) -> Path:
    return generate_scenario(
        tmp_path / "gen", "processor_outage", 3, 6000, options=GenerateOptions(file_format="csv")
    )


def _run(folder: Path, tmp_path: Path) -> RunRecord:
    return run_scenario(folder, model="none", state_dir=tmp_path / f"state-{folder.name}")


def _edit_spec(folder: Path, edit: Any) -> None:
    path = folder / "scenario.json"
    spec = json.loads(path.read_text("utf-8"))
    edit(spec)
    path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")


def _moves_to(record: RunRecord) -> str | None:
    if record.decision is None:
        return None
    target = record.decision.params.get("to_processor") or record.decision.params.get(
        "backup_processor"
    )
    return None if target is None else str(target)


def test_a_run_never_routes_to_a_processor_the_context_marks_unhealthy_spelled_another_way(
    tmp_path: Path,
) -> None:
    folder = _generated(tmp_path)
    target = _moves_to(_run(folder, tmp_path))
    assert target is not None  # the unedited scenario moves traffic

    def mark_unhealthy(spec: dict[str, Any]) -> None:
        procs = spec["context"]["processors"]
        procs[f" {target.upper()} "] = {**procs.pop(target), "healthy": False}

    edited = tmp_path / "edited"
    shutil.copytree(folder, edited)
    _edit_spec(edited, mark_unhealthy)
    record = _run(edited, tmp_path)
    moved = _moves_to(record)
    assert moved is None or not same_identifier(moved, target), record.decision


def test_a_run_never_routes_to_a_look_alike_processor_in_the_data(tmp_path: Path) -> None:
    folder = _generated(tmp_path)
    target = _moves_to(_run(folder, tmp_path))
    assert target is not None and "a" in target
    look_alike = target.replace("a", CYRILLIC_A)
    data = folder / "transactions.csv"
    data.write_text(data.read_text("utf-8").replace(f",{target},", f",{look_alike},"), "utf-8")
    record = _run(folder, tmp_path)
    moved = _moves_to(record)
    assert moved is None or moved not in (target, look_alike), record.decision


def test_a_frm_rule_rollback_in_a_run_waits_for_a_human(tmp_path: Path) -> None:
    folder = tmp_path / "fraud"
    shutil.copytree(LIBRARY / "fraud_rule_misfire-05k-s150", folder)

    def rename(spec: dict[str, Any]) -> None:
        for change in spec["context"]["recent_changes"]:
            change["kind"] = "frm_rule"

    _edit_spec(folder, rename)
    record = _run(folder, tmp_path)
    assert record.decision is not None and record.decision.action == "rollback_config"
    assert record.verdict == "needs_approval"
