"""What choosing the dimensions costs on a large file: the probe against the whole load.

    python benchmarks/dimension_probe.py [--rows 2000000] [--repeat 3]

It builds (once, cached in benchmarks/.data/) a plain CSV of `--rows` transactions with
two extra columns, `mcc` and `channel`, then times in this process, `--repeat` times each:

- auto: `load(file)`, which profiles the extra columns on the file's first
  `tools.dimensions.PROBE_ROWS` rows and then loads it;
- listed: `load(file, dimensions=[...])` with the same dimensions as a plain list (no
  probe);
- probe: the profiling query alone.

The last line is `probe_s=<median> load_s=<median listed> probe_share=<probe/load>`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / ".data"
EXTRA = {"mcc": ["5411", "5812", "5999", "7995", "4121", "5732"], "channel": ["web", "app", "pos"]}


def build(rows: int) -> Path:
    """The transactions file of the benchmark (generated once per row count)."""
    from tools.generate import GenerateOptions, generate_scenario

    target = DATA / f"extra-{rows}"
    found = sorted(target.glob("*/transactions.csv"))
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    options = GenerateOptions(file_format="csv", extra_dimensions=EXTRA)
    return generate_scenario(target, "processor_outage", 0, rows, options=options) / (
        "transactions.csv"
    )


def _timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    """Time the automatic choice, a listed choice and the probe; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import duckdb

    from tools import sql
    from tools.contract import DEFAULT_DIMENSIONS
    from tools.data import _source, load
    from tools.dimensions import PROBE_ROWS

    file = build(args.rows)
    print(f"file: {file} ({file.stat().st_size / 1e6:,.0f} MB)")
    listed = [*DEFAULT_DIMENSIONS, *EXTRA]

    def auto() -> None:
        ds = load(file)
        assert list(ds.dimensions) == listed, ds.dimensions
        ds.conn.close()

    def plain() -> None:
        load(file, dimensions=listed).conn.close()

    def probe() -> None:
        conn = duckdb.connect()
        source, params = _source("csv", file, _header(file))
        conn.execute(sql.dimension_probe(source, list(EXTRA)), {**params, "probe_rows": PROBE_ROWS})
        conn.close()

    runs = {"auto": auto, "listed": plain, "probe": probe}
    medians = {}
    for name, fn in runs.items():
        times = [_timed(fn) for _ in range(args.repeat)]
        medians[name] = statistics.median(times)
        print(f"{name}: median {medians[name]:.3f} s of {', '.join(f'{t:.3f}' for t in times)}")
    print(
        f"probe_s={medians['probe']:.3f} load_s={medians['listed']:.3f} "
        f"probe_share={medians['probe'] / medians['listed']:.3f}"
    )


def _header(file: Path) -> list[str]:
    with file.open(encoding="utf-8") as fh:
        return fh.readline().strip().split(",")


if __name__ == "__main__":
    main()
