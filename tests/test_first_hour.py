"""A new user's first hour (issue 14): their own data works without reading the code, and
every screen tells the truth. Each test captures what the user sees, at 80 and at 200
columns (`$COLUMNS`), and checks it.

Each failed on the commit before the fix: extra columns were ignored (the root cause was
`issuer_country=BR`), segments were cut to `processor=ac…` at 80 columns, eval ran one
scenario at a time, the kill switch and refused remedies were never mentioned, a page
showed a 0% success rate, a rejection read "blocked", settings had no command and an
unknown key no list, the state folder was `./.payops` wherever the shell stood, `generate`
overwrote a folder, and `-h`, `--version`, `--all` did not exist.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent.cli import app
from tests.own_data import EXAMPLE
from tools.generate import GenerateOptions, generate_scenario

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "agent" / "demo" / "demo-processor-degradation-us"
WIDTHS = (80, 200)
TIGHT = "[guard]\nmax_affected_share = 0.01\n"  # every shift on the demo needs a human


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    monkeypatch.setenv("PAYOPS_HOME", str(state))
    for name in ("PAYOPS_CONFIG", "PAYOPS_KILL_SWITCH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield state


def payops(*args: str, width: int = 200, env: dict[str, str] | None = None) -> Result:
    """`payops ARGS` as a user at a `width`-column terminal sees it."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(width), **(env or {})})


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result.stdout


def flat(text: str) -> str:
    """The text as one line: what a reader reads, however the terminal wrapped it."""
    return " ".join(text.split())


def assert_fits(text: str, width: int) -> None:
    """No line is wider than the terminal, and no value was cut to `…`."""
    for line in text.splitlines():
        assert len(line.rstrip()) <= width, line
        assert not re.search(r"\w…", line), line


# ---------------------------------------------------------------------------------------
# 1. A user's own CSV with extra columns.


@pytest.mark.parametrize("width", WIDTHS)
def test_own_csv_with_extra_columns_gives_the_exact_root_cause(home: Path, width: int) -> None:
    text = ok(payops("observe", str(EXAMPLE), width=width))
    assert_fits(text, width)
    said = flat(text)
    assert "root cause: issuer_country=BR, mcc=7995 — success rate 88.6% → 55.0%" in said
    assert "mcc (extra column), bin_country (extra column)" in said
    assert "skipped bin: looks like an identifier (5,830 values in the first 6,000 rows)" in said
    assert "skipped order_ref: looks like an identifier" in said
    assert "--dimensions +NAME adds a column, -NAME removes one" in said
    # Narrow: fewer columns, never cut ones. Wide: the codes that moved too.
    assert ("codes moved" in text) == (width == 200)

    record = json.loads(ok(payops("observe", str(EXAMPLE), "--json")))
    assert record["root_cause"] == [{"issuer_country": "BR", "mcc": "7995"}]
    assert "mcc" in record["dimensions"] and "bin" not in record["dimensions"]
    assert [s["name"] for s in record["skipped_dimensions"]] == ["bin", "order_ref"]


@pytest.mark.parametrize("width", WIDTHS)
def test_dimensions_plus_and_minus_adjust_the_defaults(home: Path, width: int) -> None:
    text = ok(payops("observe", str(EXAMPLE), "--dimensions", "+bin,-currency", width=width))
    said = flat(text)
    assert "dimensions (--dimensions): merchant_id, processor, payment_method," in said
    assert "bin (extra column)" in said and "skipped currency: removed by --dimensions" in said
    assert ", currency," not in said.split("skipped")[0]


# ---------------------------------------------------------------------------------------
# 3. Readable at 80 columns.


@pytest.mark.parametrize("width", WIDTHS)
def test_segments_wrap_and_columns_drop_when_narrow(home: Path, width: int) -> None:
    text = ok(payops("observe", str(DEMO), width=width))
    assert_fits(text, width)
    table = text.split("segment ", 1)[1]
    # One dimension per line in the segment cell, never `processor=ac…`.
    assert re.search(r"^processor=acq_c\s", table, re.M)
    assert re.search(r"^issuer_country=US\s", table, re.M)
    assert ("p-value" in text) and (("codes moved" in text) == (width == 200))


# ---------------------------------------------------------------------------------------
# 4. eval uses every core by default.


def test_eval_runs_on_every_core_by_default(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    lib = tmp_path / "lib"
    for kind, seed in (("processor_outage", 3), ("none", 4)):
        generate_scenario(lib, kind, seed, 600, options=GenerateOptions(file_format="csv"))
    text = ok(payops("eval", str(lib), "--out", str(tmp_path / "r.jsonl")))
    assert "eval: 2 scenarios on 2 worker processes" in text


# ---------------------------------------------------------------------------------------
# 5. Guard is visible.


@pytest.mark.parametrize("width", WIDTHS)
def test_kill_switch_and_refused_remedies_are_said(home: Path, width: int) -> None:
    text = ok(payops("run", str(DEMO), width=width, env={"PAYOPS_KILL_SWITCH": "1"}))
    assert_fits(text.split("rationale:")[0], width)
    said = flat(text)
    assert "kill switch on (PAYOPS_KILL_SWITCH=1): guard refuses every action but a page" in said
    refused = said.split("refused by guard (not offered as candidates):")[1].split("guard ─")[0]
    assert "shift_traffic" in refused and "enable_retry" in refused
    assert "kill_switch: kill switch engaged: shift_traffic is not allowed" in refused
    # 6. A page names the incident's segment and its rate, not all traffic's.
    assert (
        "paged on-call: nothing in the payment flow changed; processor=acq_c, "
        "issuer_country=US is at 67.5% (93.0% in the baseline)"
    ) in said


def test_json_of_a_pending_approval_says_why(home: Path) -> None:
    (home.parent / "payops.toml").write_text(TIGHT)
    record = json.loads(ok(payops("run", str(DEMO), "--json")))
    assert record["verdict"] == "needs_approval" and record["violations"] == []
    detail = "affects 10% of current attempts, above the 1% cap"
    assert record["escalations"] == [{"rule": "affected_volume_cap", "detail": detail}]
    kill = json.loads(ok(payops("run", str(DEMO), "--json", env={"PAYOPS_KILL_SWITCH": "1"})))
    assert {r["action"] for r in kill["refused"]} == {"shift_traffic", "enable_retry"}
    assert kill["refused"][0]["violations"][0]["rule"] == "kill_switch"


# ---------------------------------------------------------------------------------------
# 6. Words that agree with each other.


@pytest.mark.parametrize("width", WIDTHS)
def test_a_repeated_run_says_it_was_blocked_and_by_which_run(home: Path, width: int) -> None:
    """The second run over the same data does not act again (guard counts the ledger), and
    every line says so: blocked, which earlier run acted, nothing called executed."""
    first = flat(ok(payops("run", str(DEMO))))
    assert "outcome: executed" in first
    said = flat(ok(payops("run", str(DEMO), width=width)))
    assert "verdict: blocked" in said
    assert re.search(r"segment_cooldown: shift_traffic .* \(ledger, run-[0-9a-f]+\)", said)
    assert "outcome: blocked by guard (nothing executed)" in said
    assert "outcome: executed" not in said and "already executed" not in said


@pytest.mark.parametrize("width", WIDTHS)
def test_a_page_has_no_success_rate_and_no_value_is_blank(home: Path, width: int) -> None:
    ok(payops("run", str(DEMO), env={"PAYOPS_KILL_SWITCH": "1"}))
    stats = ok(payops("learn", "stats", "--by", "action", width=width))
    row = next(line for line in stats.splitlines() if "notify_oncall" in line)
    assert "0%" not in row and "n/a" in row
    assert "a page or no action changes no traffic, so it has no rate" in flat(stats)
    observed = ok(payops("observe", str(DEMO), "--all", width=width))
    assert "card_network=(none)" in observed and not re.search(r"card_network=\s", observed)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_rejection_reads_rejected(home: Path, width: int) -> None:
    (home.parent / "payops.toml").write_text(TIGHT)
    thread = json.loads(ok(payops("run", str(DEMO), "--json")))["thread_id"]
    said = flat(ok(payops("reject", thread, "--reason", "not now", width=width)))
    assert "outcome: rejected by operator: not now, recorded in the learning store" in said
    assert "blocked" not in said


# ---------------------------------------------------------------------------------------
# 7. Settings.


@pytest.mark.parametrize("width", WIDTHS)
def test_config_prints_each_setting_with_its_source(home: Path, width: int) -> None:
    (home.parent / "payops.toml").write_text(
        "[guard]\nmin_confidence = 0.7\nmax_shift_step_pp = 80\n"
    )
    text = ok(payops("config", width=width, env={"PAYOPS_KILL_SWITCH": "1"}))
    assert_fits(text, width)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if "." in line[:30]}
    assert rows["observe.depth"] == ["2", "default"]
    assert rows["guard.min_confidence"] == ["0.7", "file"]
    assert rows["guard.max_shift_step_pp"][:2] == ["50", "file"]
    assert rows["guard.kill_switch"][:2] == ["true", "environment"]
    assert "config file: payops.toml (./payops.toml)" in flat(text)
    if width == 200:
        assert "the file asks 80; clamped to the hard limit" in text
    document = json.loads(ok(payops("config", "--json")))
    assert document["state_dir_origin"] == "environment"


def test_an_unknown_key_names_the_valid_ones(home: Path) -> None:
    (home.parent / "payops.toml").write_text("[guard]\nmin_confidnce = 0.7\n")
    result = payops("run", str(DEMO))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("error: payops.toml: unknown key 'min_confidnce' in [guard]")
    assert "valid keys: kill_switch, min_confidence, min_evidence" in line
    (home.parent / "payops.toml").write_text("depth = 3\n")
    line = payops("observe", str(DEMO)).stderr.strip()
    assert "unknown section or key 'depth'" in line and "did you mean [observe] depth?" in line


def test_readme_documents_every_key() -> None:
    from tools.config import reference_markdown

    assert reference_markdown() in (ROOT / "README.md").read_text(encoding="utf-8"), (
        "README's payops.toml table is stale: paste `python -m tools.config`"
    )


# ---------------------------------------------------------------------------------------
# 8. The state folder.


def test_state_is_per_user_and_approve_works_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYOPS_HOME", raising=False)
    monkeypatch.delenv("PAYOPS_KILL_SWITCH", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "payops.toml").write_text(TIGHT)
    monkeypatch.chdir(first)
    run = ok(payops("run", str(DEMO)))
    assert f"from any folder that uses this state: {tmp_path / 'xdg' / 'payops'} (per-user" in (
        flat(run)
    )
    thread = re.search(r"thread id: (run-\w+)", run)
    assert thread is not None
    monkeypatch.chdir(second)
    approved = flat(ok(payops("approve", thread.group(1))))
    assert "approved by operator" in approved and "outcome: executed" in approved
    assert not (first / ".payops").exists() and not (second / ".payops").exists()


def test_the_nearest_payops_folder_above_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYOPS_HOME", raising=False)
    project = tmp_path / "project"
    (project / ".payops").mkdir(parents=True)
    (project / "data" / "daily").mkdir(parents=True)
    monkeypatch.chdir(project / "data" / "daily")
    document = json.loads(ok(payops("config", "--json")))
    assert document["state_dir"] == str(project / ".payops")
    assert document["state_dir_origin"] == "found"
    said = flat(ok(payops("config")))
    assert f"state directory: {project / '.payops'} (the nearest .payops folder)" in said


# ---------------------------------------------------------------------------------------
# 9. Smaller ones.


def test_run_lenient_reports_the_quarantined_rows(home: Path, tmp_path: Path) -> None:
    with gzip.open(EXAMPLE, "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[5][9] = "aproved"
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    result = payops("run", str(bad), "--lenient")
    ok(result)
    assert f"quarantined 1 bad rows to {tmp_path / 'bad.quarantine.csv'} (--lenient)" in flat(
        result.stderr
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_all_lists_every_anomalous_segment(home: Path, width: int) -> None:
    top = ok(payops("observe", str(DEMO), width=width))
    more = re.search(r"… and (\d+) more anomalous segments \(--all lists them\)", top)
    assert more is not None
    every = ok(payops("observe", str(DEMO), "--all", width=width))
    assert "more anomalous segments" not in every
    assert every.count("success rate") >= top.count("success rate") + int(more.group(1))


def test_generate_does_not_overwrite_without_force(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    ok(payops("generate", str(out), "--kind", "none", "--rows", "200"))
    again = payops("generate", str(out), "--kind", "none", "--rows", "200")
    assert again.exit_code == 2
    assert again.stderr.strip() == (
        f"error: OUT {out / 'none-s0'}: already exists; --force replaces it"
    )
    ok(payops("generate", str(out), "--kind", "none", "--rows", "200", "--force"))


@pytest.mark.parametrize("width", WIDTHS)
def test_short_help_version_and_kinds(home: Path, width: int) -> None:
    assert "Usage:" in ok(payops("-h", width=width))
    assert "--dimensions" in ok(payops("observe", "-h", width=width))
    assert ok(payops("--version")).strip() == "payops 0.1.0"
    kinds = flat(ok(payops("generate", "-h", width=width)))
    for kind in ("processor_outage", "three_ds_failure", "benign_shift", "none"):
        assert kind in kinds


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_shows_numbers_and_scores_results_from_outside_the_library(
    home: Path, tmp_path: Path, width: int
) -> None:
    lib = tmp_path / "mine"
    generate_scenario(lib, "processor_outage", 5, 800, options=GenerateOptions(file_format="csv"))
    before = tmp_path / "before.jsonl"
    ok(payops("eval", str(lib), "--out", str(before), "--jobs", "1"))
    after = tmp_path / "after.jsonl"
    records = [json.loads(line) for line in before.read_text().splitlines()]
    records[0]["incident_kind"] = "none"
    after.write_text("".join(json.dumps(r) + "\n" for r in records))
    # No scenario paths: the records carry their `expected`.
    text = ok(payops("eval", "--compare", str(before), str(after), width=width))
    said = flat(text)
    assert "incident-kind accuracy 100.0% 0.0% -100.0 pp worse" in said
    assert "detection recall 100.0% 100.0% =" in said
    same = flat(ok(payops("eval", "--compare", str(before), str(before), width=width)))
    assert "no scenario changed its outcome" in same and "scenario(s) changed" not in same


# ---------------------------------------------------------------------------------------
# 10. Charts a person can read.


def test_calibration_points_are_the_confidence_levels() -> None:
    from evals.report import confidence_levels

    pairs = [(0.93, True)] * 31 + [(0.93, False)] + [(0.95, True)] * 43 + [(0.9, True)] * 2
    points = confidence_levels(pairs)
    assert [(round(m, 2), n) for m, n, _, _ in points] == [(0.9, 2), (0.93, 32), (0.95, 43)]
    _, _, right, (lo, hi) = points[1]
    assert right == pytest.approx(31 / 32) and lo < right < hi <= 1.0


def test_report_without_matplotlib_is_one_line_before_the_work(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    lib = tmp_path / "lib"
    shutil.copytree(DEMO, lib / DEMO.name)
    result = payops("eval", str(lib), "--report", str(tmp_path / "rep"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --report draws its charts with matplotlib: pip install 'payops[report]'"
    )
