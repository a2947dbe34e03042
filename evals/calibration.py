"""Honest confidence: fit the reasoner's confidences on part of the scenarios, judge on the rest.

    python -m evals.calibration RECORDS.jsonl [--scenarios DIR ...] [--prior 5]

The records (from `payops eval --out`) are split in two halves by a hash of the scenario
id, so the split never depends on the results. On the calibration half, each confidence
the reasoner stated (a grade of tools/incidents/confidence.py, or a grade lowered by mixed
evidence) is refitted to the share of its decisions that were correct, shrunk toward the
stated value by `--prior` pseudo-decisions. The held-out half is then scored twice, with
the stated confidences and with the fitted ones: a table calibrated on the first half
must be as good on the second, or the figures say it is not.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from evals.harness import discover, load_records, load_specs
from evals.scoring import (
    ScenarioScore,
    brier_score,
    calibration_bins,
    expectations,
    expected_calibration_error,
    summarize,
)

LIBRARY = Path(__file__).resolve().parent / "scenarios"


def held_out(scenario_id: str) -> bool:
    """Whether a scenario is in the held-out half (a fixed hash of its id)."""
    return hashlib.sha256(scenario_id.encode()).digest()[0] % 2 == 1


def fit(scores: Sequence[ScenarioScore], prior: float) -> dict[float, float]:
    """Each stated confidence -> its accuracy, shrunk toward itself by `prior` decisions."""
    groups: dict[float, list[bool]] = defaultdict(list)
    for s in scores:
        if s.confidence is not None:
            groups[s.confidence].append(s.correct)
    return {
        stated: (sum(correct) + prior * stated) / (len(correct) + prior)
        for stated, correct in groups.items()
    }


def report(scores: Sequence[ScenarioScore], mapping: dict[float, float]) -> tuple[str, str]:
    """ECE and Brier of `scores` with stated and with mapped confidences."""
    stated = [(s.confidence, s.correct) for s in scores if s.confidence is not None]
    mapped = [(mapping.get(c, c), ok) for c, ok in stated]

    def fmt(pairs: list[tuple[float, bool]]) -> str:
        ece = expected_calibration_error(calibration_bins(pairs))
        brier = brier_score(pairs)
        return f"ECE {ece or 0:.3f}, Brier {brier or 0:.3f}"

    return fmt(stated), fmt(mapped)


def main(argv: list[str] | None = None) -> int:
    """Split, fit on one half, report on the other."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("records", type=Path, nargs="+")
    parser.add_argument("--scenarios", type=Path, action="append", default=None)
    parser.add_argument("--prior", type=float, default=5.0)
    args = parser.parse_args(argv)
    records = [r for path in args.records for r in load_records(path)]
    specs = load_specs(discover(args.scenarios or [LIBRARY]))
    scores = summarize(records, expectations(specs)).scores
    fitting = [s for s in scores if not held_out(s.scenario_id)]
    rest = [s for s in scores if held_out(s.scenario_id)]
    mapping = fit(fitting, args.prior)
    for stated, fitted in sorted(mapping.items()):
        n = sum(s.confidence == stated for s in fitting)
        print(f"  stated {stated:.4f} -> fitted {fitted:.4f} ({n} decisions)")
    before, after = report(rest, mapping)
    print(f"calibration half: {len(fitting)} scenarios; held-out half: {len(rest)} scenarios")
    print(f"held-out, stated confidences: {before}")
    print(f"held-out, fitted confidences: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
