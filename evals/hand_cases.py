"""Edge-case scenarios written row by row, without the generator: `evals/scenarios/hand-*`.

    python -m evals.hand_cases

The generator's world model is not the only one the agent should survive, so these few
scenarios are built from explicit rules in plain Python: tiny files, two processors,
a window of minutes. Rows are deterministic (a seeded `random.Random`), and files are
gzipped with a zero timestamp, so a rebuild gives the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LIBRARY = Path(__file__).resolve().parent / "scenarios"

COLUMNS = (
    "txn_id", "ts", "merchant_id", "processor", "payment_method", "card_network",
    "issuer_country", "currency", "amount_minor", "status", "decline_code", "latency_ms",
    "three_ds", "is_retry",
)  # fmt: skip
DIMENSIONS = [
    "merchant_id", "processor", "payment_method", "card_network", "issuer_country", "currency",
]  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    """One authorization attempt, before formatting."""

    ts: datetime
    merchant_id: str
    processor: str
    status: str
    decline_code: str
    latency_ms: int
    card_network: str = "visa"
    issuer_country: str = "US"
    currency: str = "USD"
    amount_minor: int = 4_500
    three_ds: str = "none"


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _times(rng: random.Random, start: datetime, minutes: int, n: int) -> list[datetime]:
    """`n` sorted timestamps, uniform over [start, start + minutes)."""
    span = minutes * 60
    return sorted(start + timedelta(seconds=rng.randrange(span)) for _ in range(n))


def _issuer_outcome(rng: random.Random, rate: float) -> tuple[str, str]:
    """An ordinary issuer answer: approved, or declined with a realistic code."""
    if rng.random() < rate:
        return "approved", ""
    return "declined", rng.choices(["51", "05", "57", "14", "61"], [50, 25, 10, 10, 5])[0]


def _write(folder: Path, spec: dict[str, Any], attempts: list[Attempt]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, a in enumerate(sorted(attempts, key=lambda a: a.ts)):
        writer.writerow(
            [
                f"h_{spec['id']}_{i:05d}", _iso(a.ts), a.merchant_id, a.processor, "card",
                a.card_network, a.issuer_country, a.currency, a.amount_minor, a.status,
                a.decline_code, a.latency_ms, a.three_ds, "false",
            ]
        )  # fmt: skip
    raw = buf.getvalue().encode("utf-8")
    # mtime=0 and no file name in the header: the bytes depend on the rows only.
    with (
        (folder / "transactions.csv.gz").open("wb") as fh,
        gzip.GzipFile(filename="", fileobj=fh, mode="wb", mtime=0) as gz,
    ):
        gz.write(raw)
    (folder / "scenario.json").write_text(
        json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return folder


def _windows(start: datetime, baseline_min: int, current_min: int) -> dict[str, Any]:
    cur = start + timedelta(minutes=baseline_min)
    end = cur + timedelta(minutes=current_min)
    return {
        "baseline_window": {"start": _iso(start), "end": _iso(cur)},
        "current_window": {"start": _iso(cur), "end": _iso(end)},
    }


def fraud_misfire_300(out: Path) -> Path:
    """300 attempts, three merchants; a fraud rule pushed to one of them starts declining
    most of its traffic with `frm_decline` in a 20-minute window."""
    rng = random.Random(1001)
    start = datetime(2026, 2, 27, 18, 0, tzinfo=UTC)
    attempts = []
    for window, minutes, n in (("base", 60, 180), ("cur", 20, 120)):
        t0 = start if window == "base" else start + timedelta(minutes=60)
        for ts in _times(rng, t0, minutes, n):
            merchant = rng.choices(["m_hand_a", "m_hand_b", "m_hand_c"], [25, 50, 25])[0]
            processor = rng.choice(["acq_a", "acq_b"])
            status, code = _issuer_outcome(rng, 0.91)
            if window == "cur" and merchant == "m_hand_b" and rng.random() < 0.65:
                status, code = "declined", "frm_decline"
            latency = int(rng.lognormvariate(5.8, 0.4))
            attempts.append(Attempt(ts, merchant, processor, status, code, latency))
    spec = {
        "format_version": 1,
        "id": "hand-fraud-misfire-300",
        "description": "Hand-written: a fraud rule change on m_hand_b declines most of its "
        "attempts with frm_decline; 300 attempts in all.",
        **_windows(start, 60, 20),
        "dimensions": DIMENSIONS,
        "context": {
            "processors": {
                "acq_a": {"fee_bps": 32, "healthy": True},
                "acq_b": {"fee_bps": 41, "healthy": True},
            },
            "recent_actions": [],
            "recent_changes": [
                {
                    "ts": "2026-02-27T18:57:00Z",
                    "kind": "fraud_rule",
                    "target": {"merchant_id": "m_hand_b"},
                    "version": "r18",
                    "previous_version": "r17",
                }
            ],
        },
        "expected": {
            "anomalous": True,
            "incident_kind": "fraud_rule_misfire",
            "root_cause": [{"merchant_id": "m_hand_b"}],
            "acceptable_actions": ["rollback_config", "adjust_fraud_rule", "notify_oncall"],
            "forbidden_actions": [
                "shift_traffic",
                "failover_processor",
                "enable_retry",
                "relax_3ds",
            ],
        },
    }
    return _write(out / spec["id"], spec, attempts)


def quiet_two_processors(out: Path) -> Path:
    """Two processors, steady rates in both windows: the right answer is to do nothing."""
    rng = random.Random(1002)
    start = datetime(2026, 4, 14, 9, 0, tzinfo=UTC)
    rates = {"acq_a": 0.93, "acq_b": 0.90}
    attempts = []
    for ts in _times(rng, start, 240, 1_200):
        processor = "acq_a" if rng.random() < 0.6 else "acq_b"
        country = rng.choices(["US", "CA", "GB"], [60, 25, 15])[0]
        currency = {"US": "USD", "CA": "CAD", "GB": "GBP"}[country]
        status, code = _issuer_outcome(rng, rates[processor])
        latency = int(rng.lognormvariate(5.9, 0.35))
        attempts.append(
            Attempt(ts, rng.choice(["m_hand_x", "m_hand_y"]), processor, status, code, latency,
                    card_network=rng.choice(["visa", "mastercard"]), issuer_country=country,
                    currency=currency, amount_minor=rng.randint(500, 20_000))
        )  # fmt: skip
    spec = {
        "format_version": 1,
        "id": "hand-quiet-two-processors",
        "description": "Hand-written: 1,200 attempts over two processors with steady rates; "
        "nothing is wrong.",
        **_windows(start, 180, 60),
        "dimensions": DIMENSIONS,
        "context": {
            "processors": {
                "acq_a": {"fee_bps": 30, "healthy": True},
                "acq_b": {"fee_bps": 45, "healthy": True},
            },
            "recent_actions": [],
            "recent_changes": [],
        },
        "expected": {
            "anomalous": False,
            "incident_kind": "none",
            "root_cause": [],
            "acceptable_actions": ["no_action"],
            "forbidden_actions": [
                "shift_traffic",
                "failover_processor",
                "enable_retry",
                "force_3ds",
                "relax_3ds",
                "rollback_config",
                "adjust_fraud_rule",
                "disable_payment_method",
            ],
        },
    }
    return _write(out / spec["id"], spec, attempts)


def short_latency_spike(out: Path) -> Path:
    """A 15-minute window in which acq_slow's latency goes from ~350 ms to seconds, with
    timeouts in the tail; acq_fast is untouched and is where traffic should go."""
    rng = random.Random(1003)
    start = datetime(2026, 5, 5, 13, 0, tzinfo=UTC)
    attempts = []
    for window, minutes, n in (("base", 45, 900), ("cur", 15, 300)):
        t0 = start if window == "base" else start + timedelta(minutes=45)
        for ts in _times(rng, t0, minutes, n):
            processor = "acq_slow" if rng.random() < 0.55 else "acq_fast"
            status, code = _issuer_outcome(rng, 0.92)
            latency = int(rng.lognormvariate(5.85, 0.4))
            if window == "cur" and processor == "acq_slow" and rng.random() < 0.7:
                latency = int(latency * rng.uniform(5.0, 14.0))
                if latency >= 9_000:  # the processor gives up at 9 s
                    status, code, latency = "error", "timeout", 9_000 + rng.randrange(400)
                elif rng.random() < 0.04:
                    status, code = "declined", "91"
            attempts.append(
                Attempt(ts, rng.choice(["m_hand_p", "m_hand_q", "m_hand_r"]), processor,
                        status, code, latency, card_network=rng.choice(["visa", "mastercard"]),
                        issuer_country="DE", currency="EUR",
                        three_ds=rng.choice(["frictionless", "challenge"]))
            )  # fmt: skip
    spec = {
        "format_version": 1,
        "id": "hand-short-latency-spike",
        "description": "Hand-written: 45-minute baseline, 15-minute current window; "
        "acq_slow's latency rises several-fold with timeouts in the tail.",
        **_windows(start, 45, 15),
        "dimensions": DIMENSIONS,
        "context": {
            "processors": {
                "acq_slow": {"fee_bps": 28, "healthy": True},
                "acq_fast": {"fee_bps": 39, "healthy": True},
            },
            "recent_actions": [],
            "recent_changes": [],
        },
        "expected": {
            "anomalous": True,
            "incident_kind": "latency_spike",
            "root_cause": [{"processor": "acq_slow"}],
            "acceptable_actions": ["shift_traffic", "notify_oncall", "enable_retry"],
            "forbidden_actions": ["adjust_fraud_rule", "disable_payment_method", "relax_3ds"],
            "best_route": "acq_fast",
        },
    }
    return _write(out / spec["id"], spec, attempts)


def traffic_mix_shift(out: Path) -> Path:
    """Every rate holds, but a campaign triples the attempts of Brazilian cards (approved
    far less often than US ones) in the current hour: the overall rate drops by mix alone.
    Nothing is broken, so nothing should be changed."""
    rng = random.Random(1004)
    start = datetime(2026, 6, 9, 15, 0, tzinfo=UTC)
    rates = {"US": 0.94, "BR": 0.80}
    attempts = []
    for window, minutes, n_us, n_br in (("base", 180, 2_700, 300), ("cur", 60, 900, 300)):
        t0 = start if window == "base" else start + timedelta(minutes=180)
        for country, n in (("US", n_us), ("BR", n_br)):
            for ts in _times(rng, t0, minutes, n):
                status, code = _issuer_outcome(rng, rates[country])
                attempts.append(
                    Attempt(ts, rng.choice(["m_hand_s", "m_hand_t"]),
                            rng.choice(["acq_a", "acq_b"]), status, code,
                            int(rng.lognormvariate(5.9, 0.35)),
                            card_network=rng.choice(["visa", "mastercard"]),
                            issuer_country=country, currency={"US": "USD", "BR": "BRL"}[country])
                )  # fmt: skip
    spec = {
        "format_version": 1,
        "id": "hand-traffic-mix-shift",
        "description": "Hand-written: BR attempts triple their pace in the current hour while "
        "every rate holds; the overall success rate drops by mix alone.",
        **_windows(start, 180, 60),
        "dimensions": DIMENSIONS,
        "context": {
            "processors": {
                "acq_a": {"fee_bps": 30, "healthy": True},
                "acq_b": {"fee_bps": 42, "healthy": True},
            },
            "recent_actions": [],
            "recent_changes": [],
        },
        "expected": {
            "anomalous": True,
            "incident_kind": "benign_shift",
            "root_cause": [{"issuer_country": "BR"}],
            "acceptable_actions": ["no_action", "notify_oncall"],
            "forbidden_actions": [
                "enable_retry",
                "shift_traffic",
                "failover_processor",
                "adjust_fraud_rule",
                "relax_3ds",
            ],
        },
    }
    return _write(out / spec["id"], spec, attempts)


CASES: tuple[Callable[[Path], Path], ...] = (
    fraud_misfire_300,
    quiet_two_processors,
    short_latency_spike,
    traffic_mix_shift,
)


def build(out: Path = LIBRARY) -> Iterator[Path]:
    """Write every hand-written scenario under `out`."""
    for case in CASES:
        yield case(out)


def main() -> int:
    """Rebuild the hand-written scenarios of the library."""
    paths = list(build())
    print(f"wrote {len(paths)} hand-written scenarios under {LIBRARY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
