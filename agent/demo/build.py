"""Rebuild the bundled demo scenario that `payops run` uses when given no data.

    python -m agent.demo.build

One small generated scenario (6,000 attempts, so the whole run stays well under two
seconds): processor acq_c degrades for US cardholders, its other countries are fine, and
shifting that segment's traffic to another processor (acq_b, named in
`expected.best_route`) is the right remedy. Same seed, same bytes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tools.data import SCENARIO_FILE
from tools.generate import GenerateOptions, generate_scenario

DEMO_DIR = Path(__file__).resolve().parent
DEMO_ID = "demo-processor-degradation-us"
DEMO_SEED = 2
DEMO_ROWS = 6_000
DEMO_OPTIONS = GenerateOptions(
    severity=0.9,
    root_dims=("processor", "issuer_country"),
    root_size="large",
    scenario_id=DEMO_ID,
    note="Demo: one processor degrades on its largest country.",
)


def build(out: Path = DEMO_DIR) -> Path:
    """Write the demo scenario folder under `out` (replacing any other one) and return it."""
    for old in out.iterdir():
        if old.is_dir() and (old / SCENARIO_FILE).exists() and old.name != DEMO_ID:
            shutil.rmtree(old)
    return generate_scenario(
        out, "processor_degradation", DEMO_SEED, DEMO_ROWS, options=DEMO_OPTIONS
    )


if __name__ == "__main__":
    print(build())
    sys.exit(0)
