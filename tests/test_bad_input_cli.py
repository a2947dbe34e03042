"""Bad input a user can give the command line: one line, exit code 2, no traceback, no work.

Windows that hold nothing to compare, data that carries terminal escapes, and output
paths that cannot be written. Each test failed on the commit before these checks: the
windows were reported as "No anomaly" at 0.95 confidence and learned from, the escapes
reached the terminal, and the paths printed a traceback (for `eval`, after the whole
evaluation).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent.cli import app
from tools.generate import GenerateOptions, generate_scenario
from tools.learning import LEARNING_FILE, LearningStore

DEMO = Path(__file__).resolve().parent.parent / "agent" / "demo" / "demo-processor-degradation-us"
ESCAPE = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, set the window title


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    monkeypatch.setenv("PAYOPS_HOME", str(state))
    monkeypatch.delenv("PAYOPS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./payops.toml
    yield state


def payops(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_user_error(result: Result, *needles: str) -> None:
    """Exit code 2 and one line on stderr naming what is wrong; nothing else."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output


def _window(spec: dict[str, object], key: str) -> tuple[str, str]:
    window = spec[key]
    assert isinstance(window, dict)
    return str(window["start"]), str(window["end"])


# ---------------------------------------------------------------------------------------
# Windows with nothing to compare.

EMPTY_BASELINE = "2020-01-01T00:00:00Z/2020-01-01T06:00:00Z"
EMPTY_CURRENT = "2020-01-01T06:00:00Z/2020-01-01T07:00:00Z"


@pytest.mark.parametrize("command", ["observe", "run"])
def test_windows_without_transactions_are_an_error_not_a_calm_day(
    home: Path, command: str
) -> None:
    result = payops(command, str(DEMO), "--baseline", EMPTY_BASELINE, "--current", EMPTY_CURRENT)
    assert_user_error(result, "holds no transactions")
    assert "No anomaly" not in result.stdout
    assert not (home / LEARNING_FILE).exists() or _learned(home) == 0


def test_a_current_window_before_the_baseline_is_an_error(home: Path) -> None:
    spec = json.loads((DEMO / "scenario.json").read_text("utf-8"))
    b_start, b_end = _window(spec, "baseline_window")
    c_start, c_end = _window(spec, "current_window")
    result = payops(
        "run", str(DEMO), "--json", "--baseline", f"{c_start}/{c_end}", "--current",
        f"{b_start}/{b_end}",
    )  # fmt: skip
    assert_user_error(result, "starts before the baseline window")
    assert result.stdout == ""


def test_scenario_windows_without_transactions_are_an_error(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "moved"
    shutil.copytree(DEMO, folder)
    spec = json.loads((folder / "scenario.json").read_text("utf-8"))
    spec["baseline_window"] = dict(zip(("start", "end"), EMPTY_BASELINE.split("/"), strict=True))
    spec["current_window"] = dict(zip(("start", "end"), EMPTY_CURRENT.split("/"), strict=True))
    (folder / "scenario.json").write_text(json.dumps(spec), "utf-8")
    assert_user_error(payops("run", str(folder), "--json"), "holds no transactions")


def _learned(home: Path) -> int:
    with LearningStore(home / LEARNING_FILE) as store:
        return store.count()


# ---------------------------------------------------------------------------------------
# Terminal escapes in data never reach the terminal.


def test_terminal_escapes_in_data_are_shown_not_sent(home: Path, tmp_path: Path) -> None:
    folder = generate_scenario(
        tmp_path / "gen", "fraud_rule_misfire", 7, 6000, options=GenerateOptions(file_format="csv")
    )
    spec = json.loads((folder / "scenario.json").read_text("utf-8"))
    assert spec["expected"]["root_cause"]
    merchant = spec["expected"]["root_cause"][0]["merchant_id"]
    hostile = f"{merchant}{ESCAPE}\u202e"
    data = folder / "transactions.csv"
    with data.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("merchant_id")
    for row in rows[1:]:
        if row[column] == merchant:
            row[column] = hostile
    with data.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    (folder / "scenario.json").unlink()  # a plain file: no context to contradict the data

    result = payops("run", str(data))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\u202e" not in result.output
    assert "\\x1b[2J" in result.stdout  # shown, so the reader sees it is there


# ---------------------------------------------------------------------------------------
# Output paths are checked before the work, with one line.


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain-file"
    path.write_text("not a directory\n")
    return path


def test_eval_out_that_is_a_directory_fails_before_evaluating(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    result = payops("eval", str(DEMO), "--out", str(out))
    assert_user_error(result, "--out", "is a directory")
    assert "scored" not in result.stdout  # no summary: the evaluation never ran


@pytest.mark.parametrize("two_models", [False, True])
def test_eval_out_under_a_file_fails_before_evaluating(
    home: Path, a_file: Path, two_models: bool
) -> None:
    models = ["--model", "stub", "--model", "none"] if two_models else []
    result = payops("eval", str(DEMO), *models, "--out", str(a_file / "results.jsonl"))
    assert_user_error(result, "--out", "is a file, not a directory")
    assert "scored" not in result.stdout


def test_eval_report_that_is_a_file_fails_before_evaluating(home: Path, a_file: Path) -> None:
    result = payops("eval", str(DEMO), "--report", str(a_file))
    assert_user_error(result, "--report", "is a file")
    assert "scored" not in result.stdout


@pytest.mark.parametrize("under_a_file", [False, True])
def test_learn_export_to_a_bad_path_is_one_line(
    home: Path, tmp_path: Path, a_file: Path, under_a_file: bool
) -> None:
    target = a_file / "outcomes.json" if under_a_file else tmp_path
    assert_user_error(payops("learn", "export", str(target)), "learn export")


def test_generate_into_a_file_fails_before_generating(home: Path, a_file: Path) -> None:
    assert_user_error(payops("generate", str(a_file), "--kind", "none"), "is a file")
    assert_user_error(
        payops("generate", str(a_file / "deeper"), "--all"), "is a file, not a directory"
    )
