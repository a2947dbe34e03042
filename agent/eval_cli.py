"""`payops eval`: run the graph over recorded scenarios, score, compare, report."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from evals.harness import (
    discover,
    evaluate,
    load_records,
    load_specs,
    workers_for,
    write_records,
)
from evals.report import render_comparison, render_summary, require_plotting, write_report
from evals.scoring import compare, expectations, recorded_expectations, summarize
from tools.output import check_output_dir, check_output_file
from tools.text import printable

LIBRARY = Path(__file__).resolve().parent.parent / "evals" / "scenarios"
DEFAULT_OUT = Path("eval-results.jsonl")


class EvalError(ValueError):
    """Bad arguments to `payops eval`."""


def _suffixed(path: Path, label: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return path.with_name(f"{path.stem}.{safe}{path.suffix}")


def run_eval(
    paths: list[Path],
    models: list[str],
    out_file: Path | None,
    report: Path | None,
    jobs: int | None,
    compare_files: tuple[Path, Path] | None,
    console: Console,
) -> None:
    """Evaluate (one model), compare two models, or compare two results files."""
    folders = discover(paths or [LIBRARY])
    specs = load_specs(folders)
    expected = expectations(specs)
    progress = sys.stderr.isatty()
    if compare_files is not None:
        before, after = (load_records(p) for p in compare_files)
        # A record's own `expected` (written by `payops eval`) first; then the scenarios'.
        expected |= recorded_expectations([*before, *after])
        console.print(render_comparison(compare(before, after, expected), console.size.width))
        return
    if not folders:
        raise EvalError(
            f"no scenario folder (with scenario.json) under {', '.join(map(str, paths))}"
        )
    if len(models) > 2:
        raise EvalError("give at most two --model options (two are compared)")
    out = out_file or DEFAULT_OUT
    # Every output path is checked before the evaluation, which can take minutes.
    for path in [_suffixed(out, label) for label in models] if len(models) == 2 else [out]:
        check_output_file(path, "--out")
    if report is not None:
        check_output_dir(report, "--report")
        require_plotting()
    console.print(
        f"eval: {len(folders)} scenarios on {workers_for(jobs, len(folders))} worker processes"
    )
    width = console.size.width
    if len(models) == 2:
        runs = []
        for label in models:
            records = evaluate(folders, model=label, jobs=jobs, progress=progress)
            write_records(records, _suffixed(out, label))
            shown = printable(str(_suffixed(out, label)))
            console.print(f"[bold]{printable(label)}[/bold]: {shown}")
            console.print(render_summary(summarize(records, expected), width))
            runs.append(records)
        console.print(render_comparison(compare(runs[0], runs[1], expected), width))
        return
    model = models[0] if models else None
    records = evaluate(folders, model=model, jobs=jobs, progress=progress)
    write_records(records, out)
    summary = summarize(records, expected)
    console.print(render_summary(summary, width))
    console.print(f"records: {printable(str(out))}")
    if report is not None:
        written = write_report(summary, records, specs, report)
        console.print(f"report: {printable(', '.join(str(p) for p in written))}")
