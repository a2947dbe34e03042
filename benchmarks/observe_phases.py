"""Where observe's time goes: load + observe in one process, by phase.

    python benchmarks/observe_phases.py FOLDER [--explain] [--cache DIR]

Prints, for each phase, the seconds spent in it (wall time of the calling thread, from
cProfile's cumulative time; DuckDB's own threads are inside the calls that wait for them)
and the process's CPU seconds overall. With `--explain`, also DuckDB's profile of the
load's one pass (the operator tree with its timings). With `--cache`, the load goes
through the scan cache in DIR (run twice to see a cached load).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, module file, function): the phases, in the order they run.
PHASES = [
    ("guess the windows to cut at", "tools/data.py", "_buckets"),
    ("one pass: check rows, build leaves", "tools/scan.py", "scan"),
    ("  of which: repeated id hashes", "tools/scan.py", "repeated"),
    ("  of which: collapse leaves to bucket cube", "tools/metrics.py", "collapse_leaves"),
    ("scan cache: digests of the file's bytes", "tools/scan_cache.py", "_digests"),
    ("scan cache: write the entry", "tools/scan_cache.py", "_store"),
    ("scan cache: merge cached and new cubes", "tools/metrics.py", "merge_bucket_cubes"),
    ("window cube from the bucket cube", "tools/metrics.py", "window_cube"),
    ("rollups (every segment, then remeasures)", "tools/metrics.py", "rollup"),
    ("detection", "tools/detection.py", "detect"),
    ("root-cause localization", "tools/root_cause.py", "localize"),
    ("decline-code mix of the evidence", "tools/metrics.py", "code_mix"),
]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Run load + observe under cProfile and print the phases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--explain", action="store_true", help="DuckDB's profile of the pass")
    parser.add_argument("--cache", type=Path, help="scan cache directory")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from tools import sql
    from tools.config import ObserveConfig
    from tools.data import ROW_FILES, file_kind, load
    from tools.observe import observe
    from tools.scan import pass_query
    from tools.scan_cache import ScanCache

    cache = ScanCache(args.cache) if args.cache else None
    started, cpu = time.perf_counter(), _cpu()
    profiler = cProfile.Profile()
    profiler.enable()
    dataset = load(args.folder, cache=cache)
    loaded = time.perf_counter() - started
    result = observe(dataset, ObserveConfig())
    profiler.disable()
    total, cpu = time.perf_counter() - started, _cpu() - cpu
    kind = file_kind(dataset.source)

    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    spent: dict[tuple[str, str], float] = {}
    for (file, _, name), (_, _, _, cumulative, _) in stats.items():
        for _, module, function in PHASES:
            if file.endswith(module) and name == function:
                spent[(module, function)] = spent.get((module, function), 0.0) + cumulative
    print(f"{args.folder}: {dataset.rows} rows, root cause {result.root_cause}")
    print(f"load {loaded:.2f} s + observe {total - loaded:.2f} s = {total:.2f} s; CPU {cpu:.2f} s")
    for label, module, function in PHASES:
        seconds = spent.get((module, function))
        if seconds is not None:
            print(f"  {label:45s} {seconds:6.2f} s")
    if args.explain and dataset.scan is not None:
        # The pass again, under EXPLAIN ANALYZE: DuckDB's operators and their times.
        query, params = pass_query(
            sql.STREAMED_VIEW, dataset.dimensions, dataset.scan.buckets, ids=kind in ROW_FILES
        )
        row = dataset.conn.execute(f"EXPLAIN ANALYZE {query}", params).fetchone()
        print(row[1] if row else "")


if __name__ == "__main__":
    main()
