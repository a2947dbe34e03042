"""Benchmark observe against a raw DuckDB GROUP BY and a pandas version, in the same run.

    python benchmarks/observe.py [--rows 10000000] [--seed 0] [--skip-pandas]

It builds a processor-outage scenario of `--rows` transactions as plain CSV (cached in
benchmarks/.data/), then times, each in a fresh process so no run warms another's cache:

- payops: load (with every CONTRACT.md validation) + observe (segment metrics for every
  segment of up to two dimensions, detection and root-cause localization);
- pandas: per window, attempts, approvals, errors, failed 3DS and latency p95 for every
  segment of up to two dimensions, written the way a user would (read_csv, then one
  groupby per dimension combination);
- duckdb: the same aggregates as one raw `SELECT ... GROUP BY GROUPING SETS` over the
  file (DuckDB reading and typing the file itself, no validation).

payops does more than either: it checks every row against CONTRACT.md section 1 and
computes the full metric set, then detects and localizes.

The last line is `vs_duckdb=<payops/duckdb> vs_pandas=<payops/pandas> rows=N peak_rss_mb=M`
(peak RSS of the payops process).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
DIMS = ["merchant_id", "processor", "payment_method", "card_network", "issuer_country", "currency"]


def build(rows: int, seed: int) -> Path:
    """The scenario folder of the benchmark (generated once per rows/seed)."""
    from tools.generate import GenerateOptions, generate_scenario

    target = DATA / f"outage-{rows}-{seed}"
    found = sorted(target.glob("*/scenario.json"))
    if found:
        return found[0].parent
    target.mkdir(parents=True, exist_ok=True)
    return generate_scenario(
        target, "processor_outage", seed, rows, options=GenerateOptions(file_format="csv")
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def phase_payops(folder: Path) -> dict[str, float]:
    """load + observe, as `payops observe` runs them."""
    from tools.config import ObserveConfig
    from tools.data import load
    from tools.observe import observe

    started = time.perf_counter()
    ds = load(folder)
    result = observe(ds, ObserveConfig())
    seconds = time.perf_counter() - started
    print(f"payops root cause: {result.root_cause}", file=sys.stderr)
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _windows(folder: Path) -> tuple[str, str, str]:
    spec = json.loads((folder / "scenario.json").read_text())
    return (
        spec["baseline_window"]["start"],
        spec["current_window"]["start"],
        spec["current_window"]["end"],
    )


def _segment_sets() -> list[tuple[str, ...]]:
    return [dims for k in (1, 2) for dims in itertools.combinations(DIMS, k)]


def phase_duckdb(folder: Path) -> dict[str, float]:
    """The pandas aggregates as one raw DuckDB GROUP BY (GROUPING SETS) over the file."""
    import duckdb

    csv = next(folder.glob("transactions.*"))
    base_start, cur_start, cur_end = _windows(folder)
    sets = ", ".join("(is_current, " + ", ".join(dims) + ")" for dims in _segment_sets())
    started = time.perf_counter()
    con = duckdb.connect()
    rows = con.execute(
        f"""
        SELECT (ts >= ?::TIMESTAMPTZ) AS is_current, {", ".join(DIMS)},
               count(*) AS attempts,
               count(*) FILTER (WHERE status = 'approved') AS approved,
               count(*) FILTER (WHERE status = 'error') AS errors,
               count(*) FILTER (WHERE three_ds = 'failed') AS three_ds_failed,
               quantile_cont(latency_ms, 0.95) AS latency_p95
        FROM read_csv(?)
        WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ
        GROUP BY GROUPING SETS ({sets})
        """,
        [cur_start, str(csv), base_start, cur_end],
    ).fetchall()
    seconds = time.perf_counter() - started
    print(f"duckdb groups: {len(rows)}", file=sys.stderr)
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def phase_leaf(folder: Path) -> dict[str, float]:
    """For context only: a GROUP BY of the leaf segments, less work than any of the above."""
    import duckdb

    csv = next(folder.glob("transactions.*"))
    base_start, cur_start, cur_end = _windows(folder)
    started = time.perf_counter()
    duckdb.connect().execute(
        f"""
        SELECT (ts >= ?::TIMESTAMPTZ) AS is_current, {", ".join(DIMS)}, count(*),
               count(*) FILTER (WHERE status = 'approved')
        FROM read_csv(?) WHERE ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ GROUP BY ALL
        """,
        [cur_start, str(csv), base_start, cur_end],
    ).fetchall()
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb()}


def phase_pandas(folder: Path) -> dict[str, float]:
    """The same segment aggregates in pandas, one groupby per dimension combination."""
    import pandas as pd

    csv = next(folder.glob("transactions.*"))
    base_start, cur_start, cur_end = _windows(folder)
    started = time.perf_counter()
    df = pd.read_csv(csv, dtype={"decline_code": "string", "card_network": "string"})
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df = df[(df["ts"] >= pd.Timestamp(base_start)) & (df["ts"] < pd.Timestamp(cur_end))]
    df["is_current"] = df["ts"] >= pd.Timestamp(cur_start)
    df["approved"] = df["status"] == "approved"
    df["error"] = df["status"] == "error"
    df["failed_3ds"] = df["three_ds"] == "failed"
    groups = 0
    for dims in _segment_sets():
        agg = df.groupby(["is_current", *dims], dropna=False).agg(
            attempts=("txn_id", "size"),
            approved=("approved", "sum"),
            errors=("error", "sum"),
            three_ds_failed=("failed_3ds", "sum"),
            latency_p95=("latency_ms", lambda s: s.quantile(0.95)),
        )
        groups += len(agg)
    seconds = time.perf_counter() - started
    print(f"pandas groups: {groups}", file=sys.stderr)
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


PHASES = {
    "payops": phase_payops,
    "duckdb": phase_duckdb,
    "leaf": phase_leaf,
    "pandas": phase_pandas,
}


def _run_phase(name: str, folder: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--folder", str(folder)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    sys.stderr.write(proc.stderr)
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Build the data, time the three phases, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-pandas", action="store_true", help="no pandas baseline")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.folder)))
        return
    started = time.perf_counter()
    folder = build(args.rows, args.seed)
    print(f"data: {folder} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    payops = _run_phase("payops", folder)
    duck = _run_phase("duckdb", folder)
    leaf = _run_phase("leaf", folder)
    print(
        f"payops {payops['seconds']:.2f} s, duckdb {duck['seconds']:.2f} s "
        f"(a leaf-only GROUP BY, less work: {leaf['seconds']:.2f} s, "
        f"payops/leaf {payops['seconds'] / leaf['seconds']:.2f})",
        file=sys.stderr,
    )
    vs_pandas = "skipped"
    if not args.skip_pandas:
        pandas = _run_phase("pandas", folder)
        print(f"pandas {pandas['seconds']:.2f} s", file=sys.stderr)
        vs_pandas = f"{payops['seconds'] / pandas['seconds']:.3f}"
    print(
        f"vs_duckdb={payops['seconds'] / duck['seconds']:.3f} vs_pandas={vs_pandas} "
        f"rows={args.rows} peak_rss_mb={payops['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
