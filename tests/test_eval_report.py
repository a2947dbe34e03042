"""The eval harness and its report: discovery, parallel runs, records on disk, report files."""

from __future__ import annotations

import io
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from evals.harness import (
    discover,
    evaluate,
    load_records,
    load_specs,
    write_records,
)
from evals.report import render_comparison, render_summary, write_report
from evals.scoring import Summary, compare, expectations, summarize
from tools.contract import RunRecord
from tools.data import SCENARIO_FILE, DataError, read_scenario

SVG = "{http://www.w3.org/2000/svg}"

_OUTAGE = {
    "anomalous": True,
    "incident_kind": "processor_outage",
    "root_cause": [{"processor": "acq_a"}],
    "acceptable_actions": ["shift_traffic", "notify_oncall"],
    "forbidden_actions": ["adjust_fraud_rule"],
}


def fake_runner(
    path: Path, *, model: str | None = None, state_dir: Path | None = None
) -> RunRecord:
    """Answers from the scenario's own `expected`, except for a few marked scenarios.

    Module-level so worker processes can unpickle it. The first scenario is slow so that
    parallel workers finish out of order.
    """
    spec = read_scenario(path / SCENARIO_FILE)
    if spec.id == "bad-data":
        raise DataError(path / "transactions.csv", "missing column status", line=1)
    assert state_dir is not None and state_dir.is_dir() and not any(state_dir.iterdir())
    if spec.id.endswith("-00"):
        time.sleep(0.2)
    exp = spec.expected
    anomalous = exp.anomalous if exp else True
    kind = exp.incident_kind if exp else "processor_outage"
    wrong = spec.id.endswith("-03")
    data: dict[str, Any] = {
        "scenario_id": spec.id,
        "anomalous": anomalous,
        "incident_kind": "issuer_outage" if wrong else kind,
        "root_cause": exp.root_cause if exp else [],
        "verdict": "executed" if anomalous else "no_action",
        "latency_ms": 10.0,
        "pid": os.getpid(),
        "model": model,
    }
    if anomalous:
        data["decision"] = {
            "action": "notify_oncall",
            "params": {"severity": "warning", "summary": "drop | on acq_a"},
            "confidence": 0.9,
            "rationale": f"{spec.id}: errors concentrate on acq_a.\nPage the on-call.",
        }
    return RunRecord.model_validate(data)


def write_scenario(root: Path, sid: str, expected: dict[str, Any] | None = _OUTAGE) -> Path:
    folder = root / sid
    folder.mkdir(parents=True)
    spec: dict[str, Any] = {"id": sid, "description": f"scenario {sid}"}
    if expected is not None:
        spec["expected"] = expected
    (folder / "scenario.json").write_text(json.dumps(spec))
    return folder


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    for i in range(6):
        write_scenario(root / ("b" if i % 2 else "a"), f"case-{i:02d}")
    write_scenario(root / "a", "healthy-01", {"anomalous": False})
    write_scenario(root / "a", "no-expected", None)
    return root


def crashing_runner(path: Path, **kwargs: Any) -> RunRecord:
    """A runner with a bug on one scenario (module-level: it is pickled)."""
    if path.name == "case-02":
        raise ZeroDivisionError("division by zero")
    return fake_runner(path, **kwargs)


def _strip_pid(records: list[RunRecord]) -> list[dict[str, Any]]:
    return [r.model_dump(exclude={"pid"}) for r in records]


def test_discover_finds_sorts_and_deduplicates(library: Path) -> None:
    (library / "notes").mkdir()
    (library / "notes" / "readme.txt").write_text("not a scenario")
    found = discover([library, library / "a", library / "a" / "case-00" / "scenario.json"])
    assert [p.name for p in found] == [
        "case-00", "case-02", "case-04", "healthy-01", "no-expected", "case-01", "case-03",
        "case-05",
    ]  # fmt: skip
    assert found == sorted(found)
    with pytest.raises(DataError, match="no such file"):
        discover([library / "missing"])


def test_parallel_evaluate_matches_in_process_order(library: Path) -> None:
    serial = evaluate([library], jobs=1, runner=fake_runner, progress=False)
    parallel = evaluate([library], jobs=2, runner=fake_runner, progress=False)
    assert [r.scenario_id for r in serial] == [p.name for p in discover([library])]
    assert _strip_pid(parallel) == _strip_pid(serial)
    assert {(r.model_extra or {})["pid"] for r in serial} == {os.getpid()}
    assert os.getpid() not in {(r.model_extra or {})["pid"] for r in parallel}


def test_bad_data_becomes_an_error_record_not_a_crash(library: Path) -> None:
    write_scenario(library, "bad-data")
    records = evaluate([library], jobs=2, runner=fake_runner, progress=False, model="stub")
    bad = next(r for r in records if r.scenario_id == "bad-data")
    assert (bad.model_extra or {})["error"].endswith(
        "transactions.csv, line 1: missing column status"
    )
    assert len(records) == 9
    summary = summarize(records, expectations(load_specs(discover([library]))))
    assert summary.errored == ["bad-data"]
    assert summary.overall.errors == 1


def test_a_runner_bug_stops_the_run_and_names_the_scenario(library: Path) -> None:
    with pytest.raises(ZeroDivisionError) as err:
        evaluate([library], jobs=2, runner=crashing_runner, progress=False)
    assert any("case-02" in note for note in getattr(err.value, "__notes__", []))


def test_unreadable_scenario_json_is_reported_under_its_folder_name(library: Path) -> None:
    broken = library / "broken-spec"
    broken.mkdir()
    (broken / "scenario.json").write_text("{not json")
    assert "broken-spec" not in load_specs(discover([library]))
    records = evaluate([broken], jobs=1, runner=fake_runner, progress=False)
    assert records[0].scenario_id == "broken-spec"
    assert "scenario.json" in (records[0].model_extra or {})["error"]


def test_duplicate_scenario_ids_are_refused(tmp_path: Path) -> None:
    write_scenario(tmp_path / "x", "same")
    write_scenario(tmp_path / "y", "same")
    with pytest.raises(DataError, match="scenario id 'same' is also used by"):
        load_specs(discover([tmp_path]))


def test_records_round_trip_through_jsonl(library: Path, tmp_path: Path) -> None:
    records = evaluate([library], jobs=1, runner=fake_runner, progress=False)
    out = tmp_path / "out" / "run.jsonl"
    write_records(records, out)
    lines = out.read_text().splitlines()
    assert len(lines) == len(records) == 8  # the scenario without expected is recorded too
    assert json.loads(lines[4])["scenario_id"] == "no-expected"
    assert load_records(out) == records
    assert [p.name for p in out.parent.iterdir()] == ["run.jsonl"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # shareable like any output file


def test_load_records_names_file_and_line_of_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    good = RunRecord(scenario_id="a", anomalous=False).model_dump_json()
    path.write_text(good + "\n\n" + '{"scenario_id": "b", "anomalous": "maybe"}\n')
    with pytest.raises(DataError) as err:
        load_records(path)
    assert err.value.line == 3
    assert str(err.value).startswith(f"{path}, line 3: not a run record: anomalous")
    path.write_text(good + "\n{oops\n")
    with pytest.raises(DataError, match=r"line 2: not a run record"):
        load_records(path)


def _summary_and_records(library: Path) -> tuple[Summary, list[RunRecord]]:
    records = evaluate([library], jobs=1, runner=fake_runner, progress=False)
    specs = load_specs(discover([library]))
    return summarize(records, expectations(specs)), records


def test_report_files_hold_the_figures(library: Path, tmp_path: Path) -> None:
    summary, records = _summary_and_records(library)
    # 6 outages (case-03 with the wrong kind) and one healthy scenario are scored.
    assert summary.overall.kind_accuracy == pytest.approx(6 / 7)
    specs = load_specs(discover([library]))
    out = tmp_path / "report"
    written = write_report(summary, records, specs, out)
    assert sorted(p.name for p in written) == sorted(
        ["summary.md", "summary.json", "calibration.svg", "per_kind.svg"]
    )

    assert Summary.model_validate_json((out / "summary.json").read_text()) == summary

    md = (out / "summary.md").read_text()
    assert "| incident-kind accuracy | 85.7% |" in md
    assert "| detection recall | 100.0% |" in md
    assert "| processor_outage | 6 |" in md
    assert "### case-03" in md  # the one wrong scenario, with its rationale
    assert "> case-03: errors concentrate on acq_a.\n> Page the on-call." in md
    assert "### case-01" not in md  # right answers are not "worst"

    cal = ET.parse(out / "calibration.svg").getroot()
    assert cal.tag == f"{SVG}svg"
    ids = {g.get("id") for g in cal.iter(f"{SVG}g")}
    assert "diagonal" in ids
    # Every confidence is 0.9: one level, with its interval and its count ("n=6").
    assert {i for i in ids if i and i.startswith(("level-", "interval-", "count-"))} == {
        "level-0.900",
        "interval-0.900",
        "count-0.900",
    }
    text = " ".join(cal.itertext())
    assert "n=6" in text and "ECE 0.067" in text and "95% intervals" in text

    per_kind = ET.parse(out / "per_kind.svg").getroot()
    ids = {g.get("id") for g in per_kind.iter(f"{SVG}g")}
    assert {
        "kind_accuracy-none",
        "kind_accuracy-processor_outage",
        "acceptable_action_rate-none",
        "acceptable_action_rate-processor_outage",
        "interval-kind_accuracy",
        "interval-acceptable_action_rate",
    } <= ids
    labels = [t.strip() for t in per_kind.itertext() if t.strip()]
    assert "processor_outage" in labels and "(n=6)" in labels


def test_terminal_tables_show_headline_and_per_kind(library: Path) -> None:
    summary, records = _summary_and_records(library)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_summary(summary))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "incident-kind accuracy" in text and "85.7%" in text
    assert "processor_outage" in text and "not scored (no expected): no-expected" in text

    changed = [
        r.model_copy(update={"incident_kind": "processor_outage"})
        if r.scenario_id == "case-03"
        else r
        for r in records
    ]
    comparison = compare(records, changed, expectations(load_specs(discover([library]))))
    assert [c.scenario_id for c in comparison.changed] == ["case-03"]
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render_comparison(comparison))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "1 scenario(s) changed" in text and "issuer_outage" in text and "better" in text
