"""The README's commands run, and what the README says they print is what they print.

Every line of every `sh` block runs (in order, in a scratch folder, at 80 columns, with
small data), except those listed in NOT_RUN with the reason. `./dev X` runs as `payops X`,
which the README says it is. The outputs the README shows are compared with the real ones,
and every option the commands table names must be an option of that command.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Commands the test does not run, and why (a README command missing here must run).
NOT_RUN = {"./dev test": "it runs ruff, mypy and this test suite"}
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def blocks(kind: str) -> list[str]:
    """The README's fenced blocks of `kind`, in order."""
    return re.findall(rf"^```{kind}\n(.*?)^```", README, re.M | re.S)


def sh_commands() -> list[str]:
    """Every command line of every `sh` block."""
    return [line.strip() for block in blocks("sh") for line in block.splitlines() if line.strip()]


def _run(command: str, work: Path, env: dict[str, str]) -> tuple[int, str]:
    words = shlex.split(command, comments=True)
    extra: dict[str, str] = {}
    while words and ENV.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        extra[name] = value
    if words[0] == "./dev":
        words = ["payops", *words[1:]]
    if words[0] == "payops":
        result = CliRunner().invoke(app, words[1:], env={**env, **extra})
        return result.exit_code, result.stdout
    assert words[0] == "python", f"the README runs {words[0]!r}: teach this test how"
    done = subprocess.run(
        [sys.executable, *words[1:]],
        cwd=ROOT,
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout


def test_every_readme_command_runs_and_prints_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("docs", "evals", "agent"):
        (work / name).symlink_to(ROOT / name)
    monkeypatch.chdir(work)
    for name in ("PAYOPS_CONFIG", "PAYOPS_KILL_SWITCH"):
        monkeypatch.delenv(name, raising=False)
    env = {"PAYOPS_HOME": str(tmp_path / "state"), "COLUMNS": "80"}
    outputs: dict[str, str] = {}
    skipped = []
    for command in sh_commands():
        if command.split("#")[0].strip() in NOT_RUN:
            skipped.append(command.split("#")[0].strip())
            continue
        code, out = _run(command, work, env)
        assert code == 0, (command, out)
        outputs[command] = out
    assert sorted(skipped) == sorted(NOT_RUN), "every other command runs"

    # The own-data example prints exactly what the README shows.
    shown = blocks("text")[0]
    observed = outputs["payops observe docs/examples/payments.csv.gz"]
    assert [line.rstrip() for line in observed.splitlines()] == shown.splitlines()
    # The settings table is the one `python -m tools.config` prints.
    assert outputs["python -m tools.config"] in README
    assert "up to date" in outputs["python -m tests.own_data --check"]
    # The kill switch is said; the eval uses the cores and writes its report.
    said = " ".join(outputs["PAYOPS_KILL_SWITCH=1 payops run"].split())
    assert "kill switch on (PAYOPS_KILL_SWITCH=1)" in said and "refused by guard" in said
    evaluated = next(out for cmd, out in outputs.items() if cmd.startswith("payops eval evals/"))
    assert re.search(r"eval: 2 scenarios on \d+ worker processes", evaluated)
    assert sorted(p.name for p in (work / "report").iterdir()) == [
        "calibration.svg", "per_kind.svg", "summary.json", "summary.md",
    ]  # fmt: skip
    assert "no scenario changed its outcome" in outputs[
        "payops eval --compare results.jsonl results.jsonl"
    ]
    # The second question of a thread reads the first one's root cause.
    follow_up = next(out for cmd, out in outputs.items() if "which processors" in cmd)
    assert "acq_c: 67.5% (was 93.0%)" in follow_up and "affected" in follow_up


def _table_rows() -> list[str]:
    section = README.split("## Commands\n", 1)[1].split("\nCommon options", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `payops")]


COMMANDS = ("learn stats", "learn export", "run", "approve", "reject", "chat", "observe",
            "generate", "eval", "config")  # fmt: skip


@pytest.mark.parametrize("row", _table_rows(), ids=lambda r: r.split("`")[1][:40])
def test_every_option_of_the_commands_table_exists(row: str) -> None:
    # `payops eval [...] [--jobs N]`, `--compare A B`: an option group joins the command before it.
    options: dict[str, set[str]] = {}
    command = ""
    for group in re.findall(r"`([^`]*)`", row.split(" | ")[0]):
        if group.startswith("payops "):
            command = next(c for c in COMMANDS if group[len("payops ") :].startswith(c))
        options.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", group))
    for command, named in options.items():
        result = CliRunner().invoke(app, [*command.split(), "-h"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for option in named:
            assert option in result.stdout, (command, option)
