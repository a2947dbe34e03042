"""Wall time of `payops run` on the bundled demo, process start included.

    python benchmarks/run_demo.py [--repeat 5]

Each repetition is a fresh process with a fresh state directory (so the action really
executes). The baseline, measured in the same run, is the floor any such CLI pays: a
fresh Python importing the same dependencies (LangGraph, langchain-core, DuckDB, rich,
typer). The bar is 2.0 s. Last line: `seconds=<median> floor=<median> vs_floor=<ratio>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAYOPS = Path(sys.executable).with_name("payops")
FLOOR = "import langgraph.graph, langchain_core.language_models, duckdb, rich.console, typer"


def _time(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    """Time the demo run and the import floor, alternating, and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs, floors = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "PAYOPS_HOME": home}
            runs.append(_time([str(PAYOPS), "run"], env))
            floors.append(_time([sys.executable, "-c", FLOOR], env))
    run, floor = statistics.median(runs), statistics.median(floors)
    print(f"payops run: {', '.join(f'{r:.2f}' for r in runs)} s", file=sys.stderr)
    print(f"seconds={run:.2f} floor={floor:.2f} vs_floor={run / floor:.2f}")


if __name__ == "__main__":
    main()
