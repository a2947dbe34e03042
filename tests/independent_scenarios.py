"""A second scenario generator, written independently of tools/generate.py.

It shares no code and few conventions with the project's generator: other processor,
merchant and country names, wallets that carry card networks, timestamps with "+00:00"
offsets, 30-minute current windows, incidents injected row by row in plain Python. The
test on it checks that observe and reason generalise beyond the data they were built on.
"""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROCS = {"adyen": 28, "stripe": 35, "worldpay": 22}
COUNTRIES = {
    "DE": ("EUR", 0.92),
    "FR": ("EUR", 0.91),
    "NL": ("EUR", 0.93),
    "IT": ("EUR", 0.89),
    "US": ("USD", 0.94),
    "BR": ("BRL", 0.84),
    "IN": ("INR", 0.82),
}
MERCHANTS = [
    f"shop_{n}"
    for n in ["ü1", "berlin", "paris", "ølstue", "tokyo", "moda", "kiosk", "zeta", "delta", "omega"]
]
NETS = [("visa", 0.6), ("mastercard", 0.32), ("amex", 0.08)]
METHODS = [("card", 0.85), ("apple_pay", 0.10), ("sepa", 0.05)]


def pick(r: random.Random, items: list[tuple[str, float]]) -> str:
    """A value drawn with the given weights."""
    x = r.random()
    acc = 0.0
    for v, w in items:
        acc += w
        if x < acc:
            return v
    return items[-1][0]


def build(out: Path, kind: str, seed: int, rows: int = 20000) -> Path:
    """Write one scenario folder with its ground truth; return its path."""
    r = random.Random(f"{kind}-{seed}")
    start = datetime(2026, 5, 10, 8, tzinfo=UTC)
    base_end = start + timedelta(hours=3)
    cur_end = base_end + timedelta(minutes=30)
    span = (cur_end - start).total_seconds()
    target: dict[str, str] = {}
    if kind == "processor_outage":
        target = {"processor": "stripe"}
    if kind == "processor_degradation":
        target = {"processor": "worldpay", "card_network": "mastercard"}
    if kind == "issuer_outage":
        target = {"issuer_country": "BR"}
    if kind == "network_incident":
        target = {"card_network": "amex"}
    if kind == "three_ds_failure":
        target = {"issuer_country": "FR"}
    if kind == "fraud_rule_misfire":
        target = {"merchant_id": "shop_moda"}
    if kind == "latency_spike":
        target = {"processor": "adyen"}
    if kind == "checkout_integration_break":
        target = {"payment_method": "apple_pay"}
    if kind == "benign_shift":
        target = {"issuer_country": "IT"}
    folder = out / f"indep-{kind}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "transactions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "txn_id",
                "ts",
                "merchant_id",
                "processor",
                "payment_method",
                "card_network",
                "issuer_country",
                "currency",
                "amount_minor",
                "status",
                "decline_code",
                "latency_ms",
                "three_ds",
                "is_retry",
            ]
        )
        for i in range(rows):
            ts = start + timedelta(seconds=r.random() * span)
            cur = ts >= base_end
            m = MERCHANTS[min(int(r.paretovariate(1.2)) - 1, len(MERCHANTS) - 1)]
            country = r.choice(list(COUNTRIES))
            ccy, base = COUNTRIES[country]
            proc = r.choice(list(PROCS)) if country != "BR" else r.choice(["stripe", "worldpay"])
            method = pick(r, METHODS)
            net = pick(r, NETS) if method in ("card", "apple_pay") else ""
            tds = ""
            if method == "card":
                tds = pick(
                    r, [("none", 0.4), ("frictionless", 0.4), ("challenge", 0.17), ("failed", 0.03)]
                )
            lat = int(math.exp(r.gauss(math.log(320), 0.45)))
            row = {
                "merchant_id": m,
                "processor": proc,
                "payment_method": method,
                "card_network": net,
                "issuer_country": country,
            }
            hit = cur and target and all(row[k] == v for k, v in target.items())
            if kind == "checkout_integration_break" and hit and r.random() < 0.8:
                continue
            status, code = "approved", ""
            u = r.random()
            if u > base:
                status = "declined"
                code = pick(
                    r,
                    [
                        ("05", 0.35),
                        ("51", 0.4),
                        ("14", 0.05),
                        ("54", 0.05),
                        ("91", 0.05),
                        ("04", 0.05),
                        ("frm_decline", 0.05),
                    ],
                )
            elif r.random() < 0.006:
                status, code = "error", "timeout"
            if hit:
                v = r.random()
                if kind == "processor_outage" and v < 0.55:
                    status, code, lat = (
                        "error",
                        r.choice(["timeout", "processing_error"]),
                        r.choice([30000, 80]),
                    )
                if kind == "processor_degradation" and v < 0.22:
                    status, code = "declined", r.choice(["91", "96"])
                if kind == "issuer_outage" and v < 0.35:
                    status, code, lat = "declined", "91", lat + 2500
                if kind == "network_incident" and v < 0.3:
                    status, code = "declined", r.choice(["91", "05", "96"])
                if kind == "three_ds_failure" and tds == "challenge":
                    status, code, tds = "declined", "1A", "failed"
                if kind == "fraud_rule_misfire" and v < 0.45:
                    status, code = "declined", "frm_decline"
                if kind == "latency_spike":
                    lat *= 6
                    if lat > 6000:
                        status, code = "error", "timeout"
                if kind == "benign_shift" and status == "approved" and v < 0.18:
                    status, code = "declined", "51"
            w.writerow(
                [
                    f"x{seed}-{i}",
                    ts.isoformat(timespec="seconds"),
                    m,
                    proc,
                    method,
                    net,
                    country,
                    ccy,
                    r.randint(100, 90000),
                    status,
                    code,
                    lat,
                    tds,
                    "false",
                ]
            )
    changes = []
    if kind == "fraud_rule_misfire":
        changes.append(
            {
                "ts": (base_end - timedelta(minutes=4)).isoformat(),
                "kind": "fraud_rule",
                "target": {"merchant_id": "shop_moda"},
                "version": "rule-77",
            }
        )
    acceptable = {
        "none": ["no_action"],
        "processor_outage": ["shift_traffic", "failover_processor", "notify_oncall"],
        "processor_degradation": ["shift_traffic", "notify_oncall", "enable_retry"],
        "issuer_outage": ["notify_oncall", "enable_retry"],
        "network_incident": ["notify_oncall", "enable_retry"],
        "three_ds_failure": ["notify_oncall"],
        "fraud_rule_misfire": ["rollback_config", "adjust_fraud_rule", "notify_oncall"],
        "latency_spike": ["shift_traffic", "notify_oncall", "enable_retry"],
        "checkout_integration_break": ["notify_oncall", "rollback_config"],
        "benign_shift": ["no_action", "notify_oncall"],
    }[kind]
    spec = {
        "format_version": 1,
        "id": f"indep-{kind}-{seed}",
        "baseline_window": {"start": start.isoformat(), "end": base_end.isoformat()},
        "current_window": {"start": base_end.isoformat(), "end": cur_end.isoformat()},
        "context": {
            "processors": {p: {"fee_bps": f, "healthy": True} for p, f in PROCS.items()},
            "recent_changes": changes,
        },
        "expected": {
            "anomalous": kind != "none",
            "incident_kind": kind,
            "root_cause": [target] if target else [],
            "acceptable_actions": acceptable,
            "forbidden_actions": ["adjust_fraud_rule"]
            if kind not in ("fraud_rule_misfire",)
            else ["shift_traffic"],
        },
    }
    (folder / "scenario.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False))
    return folder


KINDS = [
    "none",
    "processor_outage",
    "processor_degradation",
    "issuer_outage",
    "network_incident",
    "three_ds_failure",
    "fraud_rule_misfire",
    "latency_spike",
    "checkout_integration_break",
    "benign_shift",
]
