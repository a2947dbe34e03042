"""Running the agent over a library of recorded scenarios (CONTRACT.md sections 2 and 3).

`discover` finds scenario folders, `evaluate` runs each through the whole graph (in
parallel over the cores, results in discovery order), `write_records` / `load_records`
move RunRecords to and from JSON Lines.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evals.scoring import EXPECTED_FIELD
from tools.contract import RunRecord, ScenarioSpec
from tools.data import SCENARIO_FILE, DataError, read_scenario
from tools.fields import first_error
from tools.output import write_text_atomic

Runner = Callable[..., RunRecord]


def run_scenario(
    path: Path, *, model: str | None = None, state_dir: Path | None = None
) -> RunRecord:
    """The real runner: the whole agent graph on one scenario (agent.runner.run_scenario).

    Imported on first call so evals stays importable without the graph, and so a worker
    process pays the import once, on its first scenario.
    """
    from agent.runner import run_scenario as run_graph

    return run_graph(path, model=model, state_dir=state_dir)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Every scenario folder (a directory holding scenario.json) under `paths`.

    A path may be a scenario folder, a folder of them (searched recursively) or a
    scenario.json file. The result is resolved, deduplicated and sorted.
    """
    found: set[Path] = set()
    for path in paths:
        if path.is_file() and path.name == SCENARIO_FILE:
            found.add(path.parent.resolve())
        elif path.is_dir():
            found.update(p.parent.resolve() for p in path.rglob(SCENARIO_FILE) if p.is_file())
        elif path.exists():
            raise DataError(path, f"not a scenario folder (no {SCENARIO_FILE})")
        else:
            raise DataError(path, "no such file or directory")
    return sorted(found)


def load_specs(folders: Sequence[Path]) -> dict[str, ScenarioSpec]:
    """The readable scenario specs keyed by scenario id, in folder order.

    An unreadable scenario.json is left out here (`evaluate` reports it as an error
    record); two folders with the same id are refused, since results are keyed by id.
    """
    specs: dict[str, ScenarioSpec] = {}
    origin: dict[str, Path] = {}
    for folder in folders:
        try:
            spec = read_scenario(folder / SCENARIO_FILE)
        except DataError:
            continue
        if spec.id in specs:
            raise DataError(
                folder / SCENARIO_FILE, f"scenario id {spec.id!r} is also used by {origin[spec.id]}"
            )
        specs[spec.id] = spec
        origin[spec.id] = folder
    return specs


def _scenario_id(folder: Path) -> str:
    try:
        return read_scenario(folder / SCENARIO_FILE).id
    except DataError:
        return folder.name


def run_one(runner: Runner, folder: Path, model: str | None) -> RunRecord:
    """Run one scenario in a fresh state directory; bad data becomes an error record."""
    # A fresh state dir per scenario: the learning store must not carry over between
    # scenarios, or results would depend on the order they ran in.
    with tempfile.TemporaryDirectory(prefix="payops-eval-") as state:
        try:
            return _with_expected(runner(folder, model=model, state_dir=Path(state)), folder)
        except DataError as exc:
            return RunRecord.model_validate(
                {"scenario_id": _scenario_id(folder), "anomalous": False, "error": exc.message}
            )
        except Exception as exc:
            exc.add_note(f"while evaluating scenario {folder}")
            raise


def _with_expected(record: RunRecord, folder: Path) -> RunRecord:
    """The record with its scenario's `expected` (an extension field of CONTRACT section 3),
    so `eval --compare` scores a results file without the scenario folders."""
    expected = read_scenario(folder / SCENARIO_FILE).expected
    if expected is None:
        return record
    return RunRecord.model_validate(
        {**record.model_dump(mode="json"), EXPECTED_FIELD: expected.model_dump(mode="json")}
    )


def _warm_up(runner: Runner) -> None:
    """Worker initializer: import the graph once per worker, before its first scenario.

    Unpickling `runner` has already imported the runner's own module.
    """
    if runner is run_scenario:
        importlib.import_module("agent.runner")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def workers_for(jobs: int | None, scenarios: int) -> int:
    """Worker processes for `scenarios`: `jobs`, or every core when None; never more than
    there are scenarios."""
    return max(1, min(jobs if jobs is not None else os.cpu_count() or 1, scenarios))


def evaluate(
    paths: Iterable[Path],
    *,
    model: str | None = None,
    jobs: int | None = None,
    runner: Runner = run_scenario,
    progress: bool = True,
) -> list[RunRecord]:
    """Run every scenario under `paths`; one RunRecord per scenario, in discovery order.

    `jobs` > 1 (default: every core) runs scenarios in worker processes (spawned, so each
    imports payops once and nothing is shared); `jobs` = 1 runs them in this process. The
    order of the result never depends on `jobs`. `runner` must be a module-level function
    (it is pickled). Each record carries its scenario's `expected` (when it has one), so
    a results file can be scored and compared without its scenarios.
    """
    folders = discover(paths)
    workers = workers_for(jobs, len(folders))
    results: list[RunRecord | None] = [None] * len(folders)
    with _progress(progress) as bar:
        task = bar.add_task("", total=len(folders))
        if workers == 1:
            for i, folder in enumerate(folders):
                results[i] = run_one(runner, folder, model)
                bar.update(task, advance=1, description=folder.name)
        else:
            # spawn, not fork: forking a process that holds DuckDB or rich's refresh
            # thread is unsafe, and spawn behaves the same on every platform.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_warm_up, initargs=(runner,)
            ) as pool:
                futures: dict[Future[RunRecord], int] = {
                    pool.submit(run_one, runner, folder, model): i
                    for i, folder in enumerate(folders)
                }
                try:
                    for future in as_completed(futures):
                        i = futures[future]
                        results[i] = future.result()
                        bar.update(task, advance=1, description=folders[i].name)
                except BaseException:
                    # A bug (not bad data) stops the run now, not after every queued scenario.
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    return [r for r in results if r is not None]


def write_records(records: Iterable[RunRecord], out: Path) -> None:
    """Write RunRecords as JSON Lines (CONTRACT.md section 3), one per line, atomically."""
    write_text_atomic(out, "".join(r.model_dump_json() + "\n" for r in records), "--out")


def load_records(path: Path) -> list[RunRecord]:
    """Read a JSON Lines file of RunRecords; DataError names the file and line of a bad one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    records: list[RunRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(RunRecord.model_validate_json(line))
        except ValidationError as exc:
            raise DataError(path, f"not a run record: {first_error(exc)}", line=number) from None
    return records
