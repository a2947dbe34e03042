"""Wall time of `payops eval` over the scenario library, against the 60 s bar.

    python benchmarks/eval_library.py [--jobs 2]

The baseline, measured in the same run, is the serial cost of the same work: the sum of
every scenario's own run time as recorded in its result (`latency_ms`). The ratio shows
what parallelism and process start-up add or save. Last line:
`seconds=<wall> scenarios=<N> serial=<sum> vs_serial=<ratio>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAYOPS = Path(sys.executable).with_name("payops")


def main() -> None:
    """Run the library once and print the wall time against the serial sum."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        env = {**os.environ, "PAYOPS_HOME": tmp}
        started = time.perf_counter()
        subprocess.run(
            [str(PAYOPS), "eval", "evals/scenarios", "--out", str(out), "--jobs", str(args.jobs)],
            check=True,
            capture_output=True,
            env=env,
            cwd=ROOT,
        )
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    serial = sum(r["latency_ms"] for r in records) / 1000.0
    print(
        f"seconds={wall:.1f} scenarios={len(records)} serial={serial:.1f} "
        f"vs_serial={wall / serial:.2f}"
    )


if __name__ == "__main__":
    main()
