"""Benchmark observe against a raw DuckDB GROUP BY and a pandas version, in the same run.

    python benchmarks/observe.py [--rows 10000000] [--seed 0] [--skip-pandas]

It builds a processor-outage scenario of `--rows` transactions as plain CSV (cached in
benchmarks/.data/), then times, each in a fresh process so no run warms another's cache:

- payops: load (with every CONTRACT.md validation) + observe (segment metrics for every
  segment of up to two dimensions, detection and root-cause localization);
- pandas: observe's segment metrics (per window, for every segment of up to two
  dimensions: attempts; approved, declined and error counts; soft and technical declines;
  3DS attempts, challenges and failures; latency p50/p95/p99; the decline-code mix),
  written the way a user would (read_csv, then one groupby per dimension combination);
- duckdb: the same metrics as one raw `SELECT ... GROUP BY GROUPING SETS` over the file
  (DuckDB reading and typing the file itself, no validation);
- leaf (context only): a GROUP BY of the leaf segments with two counts, far less work.

payops also checks every row against CONTRACT.md section 1, which neither baseline does.

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


def _codes(codes: frozenset[str]) -> str:
    return ", ".join(f"'{c}'" for c in sorted(codes))


def phase_duckdb(folder: Path) -> dict[str, float]:
    """observe's segment metrics as one raw DuckDB GROUP BY (GROUPING SETS) over the file."""
    import duckdb

    from tools.decline_codes import SOFT_CODES, TECHNICAL_CODES

    csv = next(folder.glob("transactions.*"))
    base_start, cur_start, cur_end = _windows(folder)
    sets = ", ".join("(is_current, " + ", ".join(dims) + ")" for dims in _segment_sets())
    soft, technical = _codes(SOFT_CODES), _codes(TECHNICAL_CODES)
    started = time.perf_counter()
    con = duckdb.connect()
    rows = con.execute(
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
    """observe's segment metrics in pandas, one groupby per dimension combination."""
    import pandas as pd

    from tools.decline_codes import SOFT_CODES, TECHNICAL_CODES

    csv = next(folder.glob("transactions.*"))
    base_start, cur_start, cur_end = _windows(folder)
    started = time.perf_counter()
    df = pd.read_csv(csv, dtype={"decline_code": "string", "card_network": "string"})
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
    groups = 0
    for dims in _segment_sets():
        keys = ["is_current", *dims]
        grouped = df.groupby(keys, dropna=False)
        counts = grouped[
            [
                "approved",
                "declined",
                "error",
                "soft",
                "technical",
                "tds",
                "challenged",
                "failed_3ds",
            ]
        ].sum()
        counts["attempts"] = grouped.size()
        latency = grouped["latency_ms"].quantile([0.5, 0.95, 0.99]).unstack()
        codes = failures.groupby([*keys, "decline_code"], dropna=False).size()
        groups += len(counts) + len(latency) + len(codes)
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
