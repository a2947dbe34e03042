"""The stress grid: every incident kind under every condition, on seeds the library never uses.

    python benchmarks/stress.py [--seeds 2] [--jobs 2] [--rows 20000] [--only KIND,...]

Rows are the incident kinds; columns are conditions, each changing one thing from a plain
scenario (20,000 attempts, severity 0.7, an hour against six):

- `barely` / `severe`: severity just past material, or the worst;
- `tiny` / `small` / `huge`: 3,000 attempts (tens per segment), a root cause on ~2-3% of
  traffic, 100,000 attempts (tens of thousands per segment);
- `many`: two extra dimensions with 40 and 6 values (far more segments to test);
- `xborder`: the root cause sits on a currency as well (cross-border traffic);
- `minutes`: a 15-minute window against 45 minutes;
- `two`: a second, simultaneous incident of another kind;
- `deep3`: the root cause needs three dimensions;
- `renamed`: every dimension under another name (`route`, `bin_country`, ...).

A last row, `counts`, is failure-count data of another shape: five dimensions named `a`
to `e`, declines only, causes one to three dimensions deep, one to three of them at
once, minute windows; only detection and root cause mean anything there.

Each cell runs the whole loop on `--seeds` scenarios and prints detection/kind/exact
root cause/acceptable action as fractions of them (`-`: not meaningful there), `!` when a
forbidden action was executed. The last line is the summary over every scenario.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.harness import evaluate, load_specs  # noqa: E402
from evals.scoring import ScenarioScore, expectations, summarize  # noqa: E402
from tools.contract import INCIDENT_KINDS, ScenarioSpec  # noqa: E402
from tools.generate import GenerateOptions, generate_scenario  # noqa: E402

KINDS = list(INCIDENT_KINDS)  # `none` too: quiet traffic under each condition
# Conditions that shape an incident, which quiet traffic has none of.
INCIDENT_ONLY = frozenset({"barely", "severe", "small", "xborder", "two", "deep3"})
SEED_BASE = 9000  # the library uses 100..399; these seeds are held out from it
RENAMED = {
    "merchant_id": "shop",
    "processor": "route",
    "payment_method": "method",
    "card_network": "scheme",
    "issuer_country": "bin_country",
    "currency": "ccy",
}
# The severity at which each kind is just past material (a volume drop needs 40%, an ACS
# failure reaches only challenged attempts, a 51 wave only part of a country's declines).
BARELY: dict[str, float] = {
    "checkout_integration_break": 0.55,
    "three_ds_failure": 0.6,
    "benign_shift": 0.45,
}
# The kind a `two` cell adds: another kind on other traffic (one volume drop at most).
SECOND: dict[str, str] = {
    "processor_outage": "fraud_rule_misfire",
    "processor_degradation": "latency_spike",
    "issuer_outage": "checkout_integration_break",
    "network_incident": "fraud_rule_misfire",
    "three_ds_failure": "processor_outage",
    "fraud_rule_misfire": "issuer_outage",
    "latency_spike": "issuer_outage",
    "checkout_integration_break": "processor_degradation",
    "benign_shift": "processor_outage",
}
# Three-dimension root causes: the kind's usual place, narrowed by two more dimensions.
DEEP: dict[str, tuple[str, ...]] = {
    "processor_outage": ("processor", "issuer_country", "card_network"),
    "processor_degradation": ("processor", "issuer_country", "card_network"),
    "issuer_outage": ("issuer_country", "card_network", "merchant_id"),
    "network_incident": ("card_network", "issuer_country", "merchant_id"),
    "three_ds_failure": ("issuer_country", "card_network", "merchant_id"),
    "fraud_rule_misfire": ("merchant_id", "issuer_country", "card_network"),
    "latency_spike": ("processor", "issuer_country", "card_network"),
    "checkout_integration_break": ("merchant_id", "payment_method", "issuer_country"),
    "benign_shift": ("issuer_country", "card_network", "merchant_id"),
}
USUAL_DIM: dict[str, str] = {
    "processor_outage": "processor",
    "processor_degradation": "processor",
    "issuer_outage": "issuer_country",
    "network_incident": "card_network",
    "three_ds_failure": "issuer_country",
    "fraud_rule_misfire": "merchant_id",
    "latency_spike": "processor",
    "checkout_integration_break": "merchant_id",
    "benign_shift": "issuer_country",
}
STORES = [f"store_{i:02d}" for i in range(40)]
CHANNELS = ["web", "ios", "android", "pos", "moto", "api"]

Condition = Callable[[str, int, int], tuple[int, dict[str, object]]]


def _plain(kind: str, seed: int, rows: int) -> tuple[int, dict[str, object]]:
    return rows, {"severity": 0.7}


CONDITIONS: dict[str, Condition] = {
    "plain": _plain,
    "barely": lambda k, s, r: (r, {"severity": BARELY.get(k, 0.3)}),
    "severe": lambda k, s, r: (r, {"severity": 1.0}),
    "tiny": lambda k, s, r: (3_000, {"severity": 0.8, "root_size": "large"}),
    "small": lambda k, s, r: (2 * r, {"severity": 0.8, "root_size": "small"}),
    "huge": lambda k, s, r: (5 * r, {"severity": 0.7}),
    "many": lambda k, s, r: (
        r,
        {"severity": 0.7, "extra_dimensions": {"store": STORES, "channel": CHANNELS}},
    ),
    "xborder": lambda k, s, r: (
        2 * r,
        {"severity": 0.8, "root_dims": (USUAL_DIM[k], "currency"), "root_size": "large"},
    ),
    "minutes": lambda k, s, r: (
        r // 2,
        {"severity": 0.8, "baseline_minutes": 45, "current_minutes": 15},
    ),
    "two": lambda k, s, r: (r, {"severity": 0.8, "second_kind": SECOND[k]}),
    "deep3": lambda k, s, r: (3 * r, {"severity": 0.9, "root_dims": DEEP[k], "root_size": "large"}),
    "renamed": _plain,
}


def _rename(folder: Path) -> None:
    """Give every dimension another name: new columns, the scenario's names and truth."""
    import duckdb

    data = next(folder.glob("transactions.*"))
    con = duckdb.connect()
    copies = ", ".join(f"{old} AS {new}" for old, new in RENAMED.items())
    out = folder / "transactions.renamed.csv"
    con.execute(
        f"COPY (SELECT *, {copies} FROM read_csv('{data}', all_varchar=true)) "
        f"TO '{out}' (FORMAT csv, HEADER true)"
    )
    data.unlink()
    out.rename(folder / "transactions.csv")
    spec = json.loads((folder / "scenario.json").read_text(encoding="utf-8"))
    spec["dimensions"] = [RENAMED.get(d, d) for d in spec["dimensions"]]
    expected = spec.get("expected") or {}
    expected["root_cause"] = [
        {RENAMED.get(d, d): v for d, v in seg.items()} for seg in expected.get("root_cause", [])
    ]
    for change in spec.get("context", {}).get("recent_changes", []):
        change["target"] = {RENAMED.get(d, d): v for d, v in change["target"].items()}
    (folder / "scenario.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")


def generate_cell(out: Path, kind: str, condition: str, seed: int, rows: int) -> Path | None:
    """One scenario of the grid, or None when this kind cannot take this condition."""
    if kind == "none" and condition in INCIDENT_ONLY:
        return None
    n, options = CONDITIONS[condition](kind, seed, rows)
    scenario_id = f"{kind}.{condition}.{seed}"
    try:
        folder = generate_scenario(
            out,
            kind,
            seed,
            n,
            options=GenerateOptions.model_validate({**options, "scenario_id": scenario_id}),
        )
    except ValueError:
        return None  # e.g. no three-dimension segment of this kind is large enough
    if condition == "renamed":
        _rename(folder)
    return folder


# ---------------------------------------------------------------------------------------
# Failure-count data of another shape.

COUNT_DIMS = ("a", "b", "c", "d", "e")
COUNT_VALUES = (6, 8, 5, 10, 4)


def generate_counts(out: Path, depth: int, causes: int, seed: int) -> Path:
    """Declines over five generic dimensions; `causes` conjunctions of `depth` dimensions."""
    rng = random.Random(f"counts-{depth}-{causes}-{seed}")
    scenario_id = f"counts.d{depth}x{causes}.{seed}"
    folder = out / scenario_id
    folder.mkdir(parents=True)
    values = {
        d: [f"{d}{i}" for i in range(k)] for d, k in zip(COUNT_DIMS, COUNT_VALUES, strict=True)
    }
    weights = {d: [1.0 / (i + 1) ** 0.8 for i in range(len(v))] for d, v in values.items()}
    base_rate = {d: [rng.uniform(-0.03, 0.03) for _ in v] for d, v in values.items()}
    chosen: list[dict[str, str]] = []
    while len(chosen) < causes:
        dims = rng.sample(COUNT_DIMS, depth)
        # A cause on values with some traffic: among the three busiest of each dimension.
        seg = {d: values[d][rng.randrange(3)] for d in dims}
        if all(any(seg.get(d) != c.get(d, seg.get(d)) for d in seg) for c in chosen):
            chosen.append(seg)
    start = datetime(2026, 4, 2, 9, tzinfo=UTC) + timedelta(hours=rng.randrange(24))
    base_min, cur_min = 60, 10
    n = 200_000
    effect = [rng.uniform(0.25, 0.5) for _ in chosen]
    lines = [
        "txn_id,ts,merchant_id,processor,payment_method,currency,amount_minor,status,"
        "decline_code,latency_ms," + ",".join(COUNT_DIMS)
    ]
    for i in range(n):
        minute = rng.random() * (base_min + cur_min)
        row = {d: rng.choices(values[d], weights[d])[0] for d in COUNT_DIMS}
        rate = 0.08 + sum(base_rate[d][values[d].index(row[d])] for d in COUNT_DIMS)
        if minute >= base_min:
            for seg, e in zip(chosen, effect, strict=True):
                if all(row[d] == v for d, v in seg.items()):
                    rate += e
        failed = rng.random() < rate
        ts = start + timedelta(minutes=minute)
        lines.append(
            f"c{i},{ts:%Y-%m-%dT%H:%M:%S}Z,m,p,card,USD,100,"
            f"{'declined' if failed else 'approved'},{'05' if failed else ''},300,"
            + ",".join(row[d] for d in COUNT_DIMS)
        )
    split = start + timedelta(minutes=base_min)
    with gzip.open(folder / "transactions.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    spec = {
        "format_version": 1,
        "id": scenario_id,
        "baseline_window": {"start": _iso(start), "end": _iso(split)},
        "current_window": {"start": _iso(split), "end": _iso(split + timedelta(minutes=cur_min))},
        "dimensions": list(COUNT_DIMS),
        "expected": {
            "anomalous": True,
            # A decline wave located on no processor, issuer or network; kinds mean nothing
            # on generic dimensions, so only detection and root cause are read from this row.
            "incident_kind": "network_incident",
            "root_cause": chosen,
            "acceptable_actions": ["notify_oncall", "no_action"],
            "forbidden_actions": [],
        },
    }  # fmt: skip
    (folder / "scenario.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return folder


def _iso(ts: datetime) -> str:
    return f"{ts:%Y-%m-%dT%H:%M:%S}Z"


COUNT_CELLS = {
    "d1": (1, 1),
    "d2": (2, 1),
    "d3": (3, 1),
    "two": (2, 2),
    "three": (1, 3),
    "mixed3": (3, 2),
}


# ---------------------------------------------------------------------------------------


def _frac(x: float) -> str:
    return "1" if x >= 1 else "0" if x <= 0 else f"{x:.2f}".lstrip("0")


def _fmt(scores: list[ScenarioScore], kinds_matter: bool) -> str:
    """D/K/R/A of one cell as fractions of its scenarios; `!` if a forbidden action ran."""
    n = len(scores)
    if n == 0:
        return "-"
    d = _frac(sum(s.flagged == s.anomalous for s in scores) / n)
    k = _frac(sum(s.kind_correct for s in scores) / n) if kinds_matter else "-"
    r = _frac(sum(s.root_cause_f1 >= 1.0 for s in scores) / n)
    a = _frac(sum(s.acceptable for s in scores) / n)
    bang = "!" if any(s.forbidden_executed for s in scores) else ""
    return f"{d}/{k}/{r}/{a}{bang}"


def main() -> None:
    """Generate the grid, run the loop on every scenario, print the grid and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--only", default="", help="comma-separated kinds (and/or 'counts')")
    parser.add_argument("--keep", type=Path, help="keep the generated scenarios here")
    args = parser.parse_args()
    only = {x for x in args.only.split(",") if x}
    kinds = [k for k in KINDS if not only or k in only]
    tmp = Path(tempfile.mkdtemp(prefix="payops-stress-"))
    out = args.keep or tmp
    try:
        folders: list[Path] = []
        for kind in kinds:
            for condition in CONDITIONS:
                for s in range(args.seeds):
                    f = generate_cell(out, kind, condition, SEED_BASE + 17 * s, args.rows)
                    if f is not None:
                        folders.append(f)
        if not only or "counts" in only:
            for depth, causes in COUNT_CELLS.values():
                for s in range(args.seeds):
                    folders.append(generate_counts(out, depth, causes, SEED_BASE + s))
        records = evaluate(folders, jobs=args.jobs, progress=False)
        specs: dict[str, ScenarioSpec] = load_specs(folders)
        summary = summarize(records, expectations(specs))
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)

    cells: dict[tuple[str, str], list[ScenarioScore]] = {}
    for score in summary.scores:
        row, col, _ = score.scenario_id.split(".")
        cells.setdefault((row, col), []).append(score)
    width = 13
    print("each cell: detection/kind/exact root cause/acceptable action, over its scenarios")
    header = f"{'':28s}" + "".join(f"{c:>{width}s}" for c in CONDITIONS)
    print(header)
    for kind in kinds:
        line = f"{kind:28s}"
        for condition in CONDITIONS:
            got = cells.get((kind, condition), [])
            line += f"{_fmt(got, condition != 'renamed'):>{width}s}"
        print(line)
    if not only or "counts" in only:
        print(f"{'':28s}" + "".join(f"{c:>{width}s}" for c in COUNT_CELLS))
        line = f"{'counts':28s}"
        for depth, causes in COUNT_CELLS.values():
            got = cells.get(("counts", f"d{depth}x{causes}"), [])
            line += f"{_fmt(got, False):>{width}s}"
        print(line)
    kinds_scored = [s for s in summary.scores if not s.scenario_id.startswith("counts.")
                    and ".renamed." not in s.scenario_id]  # fmt: skip
    counts = [s for s in summary.scores if s.scenario_id.startswith("counts.")]
    o = summary.overall
    rc_counts = sum(s.root_cause_f1 for s in counts) / len(counts) if counts else float("nan")
    kind_acc = sum(s.kind_correct for s in kinds_scored) / max(len(kinds_scored), 1)
    print(
        f"stress: scenarios={o.scenarios} recall={o.detection_recall or 0:.3f} "
        f"false_alarms={o.false_alarm_rate if o.false_alarm_rate is not None else 0:.3f} "
        f"kind={kind_acc:.3f} root_cause_exact="
        f"{sum(s.root_cause_f1 >= 1 for s in summary.scores) / max(len(summary.scores), 1):.3f} "
        f"acceptable={o.acceptable_action_rate or 0:.3f} "
        f"forbidden_executed={sum(s.forbidden_executed for s in summary.scores)} "
        f"counts_rc_f1={rc_counts:.3f} errors={len(summary.errored)}"
    )


if __name__ == "__main__":
    main()
