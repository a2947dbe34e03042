"""The README's own-data example: a hand-made transactions file, as a new user brings one.

    python -m tests.own_data            # rewrite docs/examples/payments.csv.gz
    python -m tests.own_data --check    # exit 1 if the committed file differs

Written with plain Python (not payops' generator), with columns payops has never seen:
`mcc` (merchant category, 6 values), `bin_country` (the card's BIN country: the issuer
country, 3% of the time another one), `bin` (a 6-digit BIN: too many values) and
`order_ref` (unique per row: an identifier). Four hours of traffic; in the last hour, the
attempts with `mcc=7995` (gambling) from `issuer_country=BR` are approved 45% of the time
instead of 90%, with the issuers' do-not-honour and restricted-card codes.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "payments.csv.gz"
ROWS = 6_000
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
HOURS = 4
COUNTRIES = {"US": 30, "BR": 25, "GB": 12, "DE": 10, "FR": 8, "MX": 8, "IN": 7}
CURRENCY = {"US": "USD", "BR": "BRL", "GB": "GBP", "MX": "MXN", "IN": "INR"}
MCCS = {"5411": 30, "5812": 20, "5999": 20, "7995": 15, "4121": 10, "5732": 5}
COLUMNS = ["txn_id", "ts", "merchant_id", "processor", "payment_method", "card_network",
           "issuer_country", "currency", "amount_minor", "status", "decline_code",
           "latency_ms", "mcc", "bin_country", "bin", "order_ref"]  # fmt: skip


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def rows(seed: int = 14) -> list[list[object]]:
    """The example's rows, in time order (deterministic by seed)."""
    rng = random.Random(seed)
    incident = START + timedelta(hours=HOURS - 1)
    out: list[list[object]] = []
    times = sorted(rng.uniform(0, HOURS * 3600) for _ in range(ROWS))
    for i, offset in enumerate(times):
        ts = START + timedelta(seconds=int(offset))
        country, mcc = _pick(rng, COUNTRIES), _pick(rng, MCCS)
        method = _pick(rng, {"card": 80, "wallet": 15, "bank_transfer": 5})
        network = rng.choice(["visa", "mastercard", "amex"]) if method == "card" else ""
        hit = mcc == "7995" and country == "BR" and ts >= incident
        draw = rng.random()
        if draw < (0.45 if hit else 0.90):
            status, code = "approved", ""
        elif draw < 0.985:
            status = "declined"
            code = rng.choice(["05", "62", "57"] if hit else ["05", "51", "51", "14", "54"])
        else:
            status, code = "error", "91"
        bin_country = country if rng.random() < 0.97 else _pick(rng, COUNTRIES)
        out.append([
            f"t{i:05d}", ts.strftime("%Y-%m-%dT%H:%M:%SZ"), f"m_{rng.randint(1, 30):02d}",
            rng.choice(["acq_a", "acq_b", "acq_c"]), method, network, country,
            CURRENCY.get(country, "EUR"), rng.randint(500, 40_000), status, code,
            int(rng.lognormvariate(5.8, 0.35)), mcc, bin_country,
            str(rng.randint(400_000, 499_999)), f"ord-{rng.getrandbits(48):012x}",
        ])  # fmt: skip
    return out


def content() -> bytes:
    """The gzip-compressed CSV, byte for byte (mtime 0, so it is reproducible)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows())
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def main(argv: list[str]) -> int:
    """Write the example, or with --check compare it with the committed file."""
    if "--check" in argv:
        same = EXAMPLE.is_file() and EXAMPLE.read_bytes() == content()
        print("up to date" if same else f"{EXAMPLE} differs: run python -m tests.own_data")
        return 0 if same else 1
    EXAMPLE.parent.mkdir(parents=True, exist_ok=True)
    EXAMPLE.write_bytes(content())
    print(EXAMPLE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
