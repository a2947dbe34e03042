"""observe against the floor: the least work that answers observe's question.

    python benchmarks/observe.py [--rows 10000000[,2000000...]] [--seed 0] [--repeat 5]
                                 [--formats csv,parquet] [--no-context] [--incremental]

The data is a processor-outage scenario of `--rows` transactions (each size given),
written by `payops generate` once per format (CSV and Parquet, the same rows) and kept in
benchmarks/.data/.

**The floor** is one DuckDB query in a fresh Python process: read the file once and count
attempts and approvals per window for every segment of up to two dimensions
(`GROUP BY GROUPING SETS`), with the scenario's windows. It checks nothing and computes
nothing else.

**payops** is `payops observe FOLDER --json` as a user runs it, a whole process with an
empty state directory (nothing cached yet; like a first observe of a file, it writes the
scan cache): every row checked against CONTRACT.md section 1,
every segment's metrics, detection and root cause.

The two are timed alternately, `--repeat` times each, so that load from other processes
falls on both alike; the figure is the median of the per-pair ratios payops / floor. For
each format the last lines are

    vs_floor=<payops/floor> rows=<N> format=<csv|parquet> peak_rss_mb=<M>

with M the largest peak RSS of the payops processes. Context lines (stderr), timed once:
the same segment metrics observe computes, in pandas and as one raw DuckDB GROUPING SETS
query (neither checks the rows).

`--incremental` measures a repeated observe over a CSV that grew: observe the file (empty
cache), append 100,000 rows, observe again (the cache from the first run), and check the
second result against a full scan of the grown file. It prints

    incremental=<second/first> in_process=<second/first> rows=<N> appended=<M> equal=<bool>

`incremental` compares whole `payops observe` processes, `in_process` the load+observe
calls inside one process (what a long-running loop pays per cycle, without interpreter
start-up and imports).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
PAYOPS = Path(sys.executable).with_name("payops")
APPENDED_ROWS = 100_000

# The floor, run as `python -c FLOOR FOLDER`: only DuckDB and the standard library.
FLOOR = """
import itertools, json, sys
from pathlib import Path
import duckdb
folder = Path(sys.argv[1])
spec = json.loads((folder / "scenario.json").read_text())
data = next(folder.glob("transactions.*"))
dims = spec["dimensions"]
sets = [("is_current", *c) for k in (0, 1, 2) for c in itertools.combinations(dims, k)]
scan = "read_parquet($path)" if data.suffix == ".parquet" else "read_csv($path)"
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
rows = con.execute(
    f'''SELECT ts >= $cur_start::TIMESTAMPTZ AS is_current, {", ".join(dims)},
               count(*) AS attempts, count(*) FILTER (WHERE status = 'approved') AS approved
        FROM {scan}
        WHERE (ts >= $base_start::TIMESTAMPTZ AND ts < $base_end::TIMESTAMPTZ)
           OR (ts >= $cur_start::TIMESTAMPTZ AND ts < $cur_end::TIMESTAMPTZ)
        GROUP BY GROUPING SETS ({", ".join("(" + ", ".join(s) + ")" for s in sets)})''',
    {
        "path": str(data),
        "base_start": spec["baseline_window"]["start"],
        "base_end": spec["baseline_window"]["end"],
        "cur_start": spec["current_window"]["start"],
        "cur_end": spec["current_window"]["end"],
    },
).fetchall()
print(len(rows))
"""


def build(rows: int, seed: int, fmt: str) -> Path:
    """The scenario folder of the benchmark in `fmt` (generated once per rows/seed/format)."""
    from tools.generate import GenerateOptions, generate_scenario

    target = DATA / f"outage-{rows}-{seed}-{fmt}"
    found = sorted(target.glob("*/scenario.json"))
    if found:
        return found[0].parent
    target.mkdir(parents=True, exist_ok=True)
    return generate_scenario(
        target, "processor_outage", seed, rows, options=GenerateOptions(file_format=fmt)
    )


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one process, which must succeed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()}")
        return seconds, usage.ru_maxrss / 1024.0, out.read().decode()


def run_payops(folder: Path, home: Path) -> tuple[float, float, str]:
    """`payops observe FOLDER --json` in a fresh process with state directory `home`."""
    env = {**os.environ, "PAYOPS_HOME": str(home)}
    return run([str(PAYOPS), "observe", str(folder), "--json"], env)


def run_floor(folder: Path) -> float:
    """Wall seconds of the floor query in a fresh process."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", FLOOR, str(folder)], check=True, capture_output=True, cwd=ROOT
    )
    return time.perf_counter() - started


def against_floor(folder: Path, rows: int, fmt: str, repeat: int) -> float:
    """Alternate payops and the floor; print the format's line; return payops' median s."""
    ratios, seconds, peaks = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="payops-bench-") as home:
            payops, rss, _ = run_payops(folder, Path(home))
        floor = run_floor(folder)
        ratios.append(payops / floor)
        seconds.append(payops)
        peaks.append(rss)
        print(
            f"{fmt}: payops {payops:.2f} s, floor {floor:.2f} s, ratio {payops / floor:.2f}",
            file=sys.stderr,
        )
    print(
        f"vs_floor={statistics.median(ratios):.2f} rows={rows} format={fmt} "
        f"peak_rss_mb={max(peaks):.0f}",
        flush=True,
    )
    return statistics.median(seconds)


# --- context: observe's segment metrics computed the way a user might, unchecked ---------

DIMS = ["merchant_id", "processor", "payment_method", "card_network", "issuer_country", "currency"]


def _windows(folder: Path) -> tuple[str, str, str]:
    spec = json.loads((folder / "scenario.json").read_text())
    return (
        spec["baseline_window"]["start"],
        spec["current_window"]["start"],
        spec["current_window"]["end"],
    )


def _segment_sets() -> list[tuple[str, ...]]:
    return [dims for k in (1, 2) for dims in itertools.combinations(DIMS, k)]


def _codes(codes: frozenset[str]) -> str:
    return ", ".join(f"'{c}'" for c in sorted(codes))


def phase_grouping_sets(folder: Path) -> float:
    """observe's segment metrics as one raw DuckDB GROUP BY GROUPING SETS over the file."""
    import duckdb

    from tools.decline_codes import SOFT_CODES, TECHNICAL_CODES

    data = next(folder.glob("transactions.*"))
    scan = "read_parquet(?)" if data.suffix == ".parquet" else "read_csv(?)"
    base_start, cur_start, cur_end = _windows(folder)
    sets = ", ".join("(is_current, " + ", ".join(dims) + ")" for dims in _segment_sets())
    soft, technical = _codes(SOFT_CODES), _codes(TECHNICAL_CODES)
    started = time.perf_counter()
    duckdb.connect().execute(
        f"""
        SELECT (ts >= ?::TIMESTAMPTZ) AS is_current, {", ".join(DIMS)},
               count(*) AS attempts,
               count(*) FILTER (WHERE status = 'approved') AS approved,
               count(*) FILTER (WHERE status = 'declined') AS declined,
               count(*) FILTER (WHERE status = 'error') AS errors,
               count(*) FILTER (WHERE status = 'declined' AND decline_code IN ({soft})) AS soft,
               count(*) FILTER (WHERE status = 'error' OR decline_code IN ({technical}))
                 AS technical,
               count(*) FILTER (WHERE three_ds IN ('frictionless', 'challenge', 'failed')) AS tds,
               count(*) FILTER (WHERE three_ds IN ('challenge', 'failed')) AS challenged,
               count(*) FILTER (WHERE three_ds = 'failed') AS three_ds_failed,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS latency,
               histogram(decline_code) FILTER (WHERE status <> 'approved') AS decline_codes
        FROM {scan}
        WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ
        GROUP BY GROUPING SETS ({sets})
        """,
        [cur_start, str(data), base_start, cur_end],
    ).fetchall()
    return time.perf_counter() - started


def phase_pandas(folder: Path) -> float:
    """observe's segment metrics in pandas, one groupby per dimension combination."""
    import pandas as pd

    from tools.decline_codes import SOFT_CODES, TECHNICAL_CODES

    data = next(folder.glob("transactions.*"))
    base_start, cur_start, cur_end = _windows(folder)
    started = time.perf_counter()
    if data.suffix == ".parquet":
        df = pd.read_parquet(data)
    else:
        df = pd.read_csv(data, dtype={"decline_code": "string", "card_network": "string"})
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df = df[(df["ts"] >= pd.Timestamp(base_start)) & (df["ts"] < pd.Timestamp(cur_end))]
    df["is_current"] = df["ts"] >= pd.Timestamp(cur_start)
    df["approved"] = df["status"] == "approved"
    df["declined"] = df["status"] == "declined"
    df["error"] = df["status"] == "error"
    df["soft"] = df["declined"] & df["decline_code"].isin(SOFT_CODES)
    df["technical"] = df["error"] | df["decline_code"].isin(TECHNICAL_CODES)
    df["tds"] = df["three_ds"].isin(["frictionless", "challenge", "failed"])
    df["challenged"] = df["three_ds"].isin(["challenge", "failed"])
    df["failed_3ds"] = df["three_ds"] == "failed"
    failures = df[~df["approved"]]
    counters = ["approved", "declined", "error", "soft", "technical", "tds", "challenged"]
    for dims in _segment_sets():
        keys = ["is_current", *dims]
        grouped = df.groupby(keys, dropna=False)
        counts = grouped[[*counters, "failed_3ds"]].sum()
        counts["attempts"] = grouped.size()
        grouped["latency_ms"].quantile([0.5, 0.95, 0.99]).unstack()
        failures.groupby([*keys, "decline_code"], dropna=False).size()
    return time.perf_counter() - started


def phase_incremental(folder: Path, append: Path) -> dict[str, float]:
    """In one process: load+observe, append the rows, load+observe again (the cache)."""
    from tools.config import ObserveConfig, find_state_dir
    from tools.data import load
    from tools.observe import observe
    from tools.scan_cache import ScanCache

    cache = ScanCache(find_state_dir().path / "cache")
    data = next(folder.glob("transactions.*"))
    started = time.perf_counter()
    observe(load(folder, cache=cache), ObserveConfig())
    first = time.perf_counter() - started
    with open(data, "ab") as out, open(append, "rb") as extra:
        shutil.copyfileobj(extra, out)
    started = time.perf_counter()
    observe(load(folder, cache=cache), ObserveConfig())
    return {"first": first, "second": time.perf_counter() - started}


CONTEXT_PHASES = {"grouping_sets": phase_grouping_sets, "pandas": phase_pandas}


def context(folder: Path, fmt: str, payops: float) -> None:
    """The same metrics in pandas and as raw GROUPING SETS, each once in a fresh process."""
    for name in CONTEXT_PHASES:
        _, _, out = run([sys.executable, __file__, "--phase", name, "--folder", str(folder)])
        seconds = float(out.strip().splitlines()[-1])
        print(
            f"context: {name} {seconds:.2f} s, payops {payops:.2f} s "
            f"(payops/{name} {payops / seconds:.2f}) format={fmt}",
            file=sys.stderr,
        )


def appended_rows(folder: Path) -> Path:
    """100,000 rows of the current window again, under new ids, as CSV lines (no header)."""
    import duckdb

    target = folder.parent / "appended.csv"
    if target.exists():
        return target
    data = next(folder.glob("transactions.*"))
    _, cur_start, cur_end = _windows(folder)
    partial = target.with_suffix(".partial")
    duckdb.connect().execute(
        """COPY (
            SELECT * REPLACE (txn_id || '-again' AS txn_id)
            FROM read_csv($path, all_varchar = true)
            WHERE ts >= $start AND ts < $end
            ORDER BY txn_id LIMIT $n
        ) TO $out (FORMAT csv, HEADER false)""",
        {
            "path": str(data),
            "start": cur_start,
            "end": cur_end,
            "n": APPENDED_ROWS,
            "out": str(partial),
        },
    )
    partial.replace(target)
    return target


def incremental(folder: Path, rows: int, repeat: int) -> None:
    """observe, append 100k rows, observe again: whole processes and in one process."""
    append = appended_rows(folder)
    work = DATA / "incremental"
    whole, inside, equal = [], [], True
    for _ in range(repeat):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(folder, work / folder.name)
        grown = work / folder.name
        data = next(grown.glob("transactions.*"))
        size = data.stat().st_size
        with tempfile.TemporaryDirectory(prefix="payops-bench-") as home:
            first, _, _ = run_payops(grown, Path(home))
            with open(data, "ab") as out, open(append, "rb") as extra:
                shutil.copyfileobj(extra, out)
            second, _, cached = run_payops(grown, Path(home))
        with tempfile.TemporaryDirectory(prefix="payops-bench-") as home:
            _, _, full = run_payops(grown, Path(home))
        equal = equal and cached == full
        whole.append(second / first)
        os.truncate(data, size)
        with tempfile.TemporaryDirectory(prefix="payops-bench-") as home:
            _, _, printed = run(
                [sys.executable, __file__, "--phase", "incremental", "--folder", str(grown),
                 "--append", str(append)],
                env={**os.environ, "PAYOPS_HOME": home},
            )  # fmt: skip
        phase = json.loads(printed.strip().splitlines()[-1])
        inside.append(phase["second"] / phase["first"])
        print(
            f"incremental: whole process {first:.2f} s -> {second:.2f} s; "
            f"in process {phase['first']:.2f} s -> {phase['second']:.2f} s",
            file=sys.stderr,
        )
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"incremental={statistics.median(whole):.3f} in_process={statistics.median(inside):.3f} "
        f"rows={rows} appended={APPENDED_ROWS} equal={equal}"
    )


def main() -> None:
    """Build the data, time payops against the floor per format, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[10_000_000],
        help="rows, or several sizes separated by commas (2000000,10000000)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--no-context", action="store_true", help="skip pandas and raw SQL")
    parser.add_argument("--incremental", action="store_true", help="also the grown-CSV run")
    parser.add_argument("--phase", choices=[*CONTEXT_PHASES, "incremental"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--append", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.phase == "incremental":
        print(json.dumps(phase_incremental(args.folder, args.append)))
        return
    if args.phase:
        print(CONTEXT_PHASES[args.phase](args.folder))
        return
    for rows in args.rows:
        for fmt in args.formats.split(","):
            started = time.perf_counter()
            folder = build(rows, args.seed, fmt)
            print(f"data: {folder} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
            payops = against_floor(folder, rows, fmt, args.repeat)
            if not args.no_context:
                context(folder, fmt, payops)
            if args.incremental and fmt == "csv":
                incremental(folder, rows, args.repeat)


if __name__ == "__main__":
    main()
