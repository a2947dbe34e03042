"""A controlled traffic table for observe's unit tests: every dimension independent.

Unlike the scenario generator, this builds the exact structures root-cause localization
must tell apart (one processor in one country vs. one country on every processor), with
nothing else going on. Rows are derived from hashes of (row, salt, seed), so a seed gives
the same table every time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tools.contract import TimeWindow
from tools.data import Dataset

DIMENSIONS = [
    "merchant_id",
    "processor",
    "payment_method",
    "card_network",
    "issuer_country",
    "currency",
]
BASELINE = TimeWindow(
    start=datetime(2026, 3, 1, 0, tzinfo=UTC), end=datetime(2026, 3, 1, 6, tzinfo=UTC)
)
CURRENT = TimeWindow(
    start=datetime(2026, 3, 1, 6, tzinfo=UTC), end=datetime(2026, 3, 1, 7, tzinfo=UTC)
)
IN_CURRENT = "ts >= TIMESTAMP '2026-03-01 06:00:00'"


def traffic(rows: int, seed: int, incident: str = "") -> Dataset:
    """`rows` attempts over 7 hours with an 88% success rate; `incident` is an UPDATE/DELETE
    applied afterwards, which may use the uniforms `u2` and the helper columns."""
    con = duckdb.connect()

    def h(salt: int) -> str:
        return f"hash(concat(i::VARCHAR, '-{salt}-', {int(seed)}::VARCHAR))"

    con.execute(f"""
        CREATE TABLE transactions AS
        SELECT 't' || i AS txn_id,
               TIMESTAMP '2026-03-01 00:00:00'
                 + to_microseconds((i * 7 * 3600 * 1000000 // {int(rows)})::BIGINT) AS ts,
               'm_' || lpad(({h(1)} % 20)::VARCHAR, 2, '0') AS merchant_id,
               'acq_' || chr((97 + {h(2)} % 4)::INT) AS processor,
               CASE WHEN {h(3)} % 10 < 8 THEN 'card' ELSE 'wallet' END AS payment_method,
               ['visa', 'mastercard', 'amex'][1 + ({h(4)} % 3)::INT] AS card_network,
               ['US', 'GB', 'DE', 'FR', 'BR', 'MX', 'IN', 'JP'][1 + ({h(5)} % 8)::INT]
                 AS issuer_country,
               ({h(7)} % 100000)::BIGINT AS amount_minor,
               ({h(8)} % 10000) / 10000.0 AS u,
               ({h(9)} % 10000) / 10000.0 AS u2,
               (100 + {h(10)} % 500)::BIGINT AS latency_ms,
               ['none', 'frictionless', 'challenge', 'failed'][1 + ({h(11)} % 4)::INT] AS three_ds,
               false AS is_retry
        FROM range({int(rows)}) t(i)
    """)
    con.execute("""
        ALTER TABLE transactions ADD COLUMN currency VARCHAR;
        UPDATE transactions SET currency = CASE issuer_country
            WHEN 'US' THEN 'USD' WHEN 'GB' THEN 'GBP' WHEN 'BR' THEN 'BRL'
            WHEN 'MX' THEN 'MXN' WHEN 'IN' THEN 'INR' WHEN 'JP' THEN 'JPY' ELSE 'EUR' END;
        ALTER TABLE transactions ADD COLUMN status VARCHAR;
        ALTER TABLE transactions ADD COLUMN decline_code VARCHAR;
        UPDATE transactions SET
            status = CASE WHEN u < 0.88 THEN 'approved'
                          WHEN u < 0.99 THEN 'declined' ELSE 'error' END,
            decline_code = CASE WHEN u < 0.88 THEN '' WHEN u < 0.93 THEN '51'
                                WHEN u < 0.96 THEN '05' WHEN u < 0.99 THEN '04'
                                ELSE 'timeout' END;
    """)
    if incident:
        con.execute(incident)
    return Dataset(conn=con, source=Path("segment-data"), dimensions=list(DIMENSIONS), rows=rows)
