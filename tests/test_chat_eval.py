"""`payops eval --chat`: recorded conversations scored on trajectory, facts and figures."""

from __future__ import annotations

import json
from pathlib import Path

from evals.chat import CASES_DIR, discover_cases, load_case, run_case
from tests.test_approval import payops


def test_every_recorded_conversation_reads_and_names_a_library_scenario() -> None:
    files = discover_cases([CASES_DIR])
    assert len(files) >= 15
    for f in files:
        case = load_case(f)
        assert (CASES_DIR.parent / "scenarios" / case.scenario / "scenario.json").is_file()


def test_a_recorded_conversation_passes_and_a_wrong_expectation_fails(tmp_path: Path) -> None:
    good = run_case(CASES_DIR / "injected-instruction.json")
    assert good.passed, good
    assert good.unapproved_executions == 0
    case = json.loads((CASES_DIR / "what-is-wrong-issuer_outage.json").read_text())
    case["turns"][0]["facts"].append("acq_zz")  # a fact the answer cannot name
    case["turns"][1]["tools_forbidden"].append("drill_down")
    case["scenario"] = str(CASES_DIR.parent / "scenarios" / case["scenario"])
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(case))
    score = run_case(wrong)
    assert not score.passed
    assert score.turns[0].missing_facts == ["acq_zz"]
    assert score.turns[1].forbidden_tools == ["drill_down"]


def test_the_command_scores_a_folder_and_fails_when_a_case_fails(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = tmp_path / "cases"
    folder.mkdir()
    case = json.loads((CASES_DIR / "blocked-proposal.json").read_text())
    case["scenario"] = str(CASES_DIR.parent / "scenarios" / case["scenario"])
    (folder / "ok.json").write_text(json.dumps(case))
    out = tmp_path / "turns.jsonl"
    done = payops(home, "eval", "--chat", str(folder), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["trajectory_ok"] for r in records] == [True, True]
    case["turns"][1]["facts"] = ["an answer it never gives"]
    (folder / "ok.json").write_text(json.dumps(case))
    failed = payops(home, "eval", "--chat", str(folder), "--out", str(out))
    assert failed.returncode == 1
