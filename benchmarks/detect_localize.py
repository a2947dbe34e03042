"""Time observe's detection and root cause on fixed leaf cubes, here and in another tree.

    python benchmarks/detect_localize.py [--against TREE] [--repeat 7] [--rounds 3]

For each scenario below, the data is loaded and the leaf cube built once; then `observe`
runs `--repeat` times with the cube kept, so the time is what follows the scan: segment
rollup, every signal's detection, root-cause localization and the evidence. `--against`
runs the same measurement on another source tree (e.g. an export of an earlier commit:
`git archive 144090b | tar -x -C /tmp/before`) in its own process. The two trees take
turns for `--rounds` rounds, each scenario keeps its best median (other work on the
machine only ever adds time), and the last line prints the ratio of the totals,
`detect_localize_ratio=<this / other>`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "processor_outage-30k-s104",
    "hard-two-outage-and-fraud-s300",
    "three_ds_failure-25k-s143",
    "none-40k-s202",
    "hard-extra-noise-issuer-s372",
)


def measure(library: Path, repeat: int) -> dict[str, float]:
    """Median seconds of observe-after-the-scan per scenario, in this process's tree."""
    import tools.observe as observe_module
    from tools.config import ObserveConfig
    from tools.data import load

    # observe's module global is swapped for a no-op once the cube exists (whatever
    # either tree's observe calls its scan, it looks it up there).
    build = vars(observe_module)["build_leaf_cube"]
    out: dict[str, float] = {}
    for name in SCENARIOS:
        ds = load(library / name)
        cfg = ObserveConfig()
        setattr(observe_module, "build_leaf_cube", build)  # noqa: B010
        observe_module.observe(ds, cfg)  # builds the cube once, warms DuckDB
        setattr(observe_module, "build_leaf_cube", lambda *a, **k: None)  # noqa: B010
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            observe_module.observe(ds, cfg)
            times.append(time.perf_counter() - started)
        setattr(observe_module, "build_leaf_cube", build)  # noqa: B010
        out[name] = statistics.median(times)
    return out


def _run(tree: Path, library: Path, repeat: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", "--library", str(library), "--repeat", str(repeat)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Measure here (and in `--against`), print per-scenario times and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--against", type=Path, help="another source tree to compare with")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--library", type=Path, default=ROOT / "evals" / "scenarios")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.library, args.repeat)))
        return
    here: dict[str, float] = {}
    other: dict[str, float] = {}
    for _ in range(args.rounds):
        for tree, best in ((ROOT, here), (args.against, other)):
            if tree is None:
                continue
            for name, seconds in _run(tree, args.library, args.repeat).items():
                best[name] = min(seconds, best.get(name, seconds))
    for name in SCENARIOS:
        line = f"{name:36s} {here[name] * 1000:8.1f} ms"
        if other:
            line += f"  vs {other[name] * 1000:8.1f} ms  x{here[name] / other[name]:.2f}"
        print(line, file=sys.stderr)
    total = sum(here.values())
    if other:
        print(
            f"detect_localize_ratio={total / sum(other.values()):.3f} "
            f"here_ms={total * 1000:.1f} other_ms={sum(other.values()) * 1000:.1f}"
        )
    else:
        print(f"detect_localize_ms={total * 1000:.1f}")


if __name__ == "__main__":
    main()
