"""Segment and route snapshots read from DuckDB: the facts guard and simulator rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tools.contract import TimeWindow
from tools.data import DataError, Dataset
from tools.routes import snapshot

BASELINE = TimeWindow(
    start=datetime(2026, 3, 1, 0, tzinfo=UTC), end=datetime(2026, 3, 1, 6, tzinfo=UTC)
)
CURRENT = TimeWindow(
    start=datetime(2026, 3, 1, 6, tzinfo=UTC), end=datetime(2026, 3, 1, 7, tzinfo=UTC)
)

Row = tuple[
    datetime, str, str, str, str, str, str
]  # ts, merchant, processor, country, status, code, 3ds


def _dataset(rows: list[Row]) -> Dataset:
    conn = duckdb.connect()
    conn.execute(
        """CREATE TABLE transactions (
            txn_id VARCHAR, ts TIMESTAMP, merchant_id VARCHAR, processor VARCHAR,
            payment_method VARCHAR, card_network VARCHAR, issuer_country VARCHAR,
            currency VARCHAR, amount_minor BIGINT, status VARCHAR, decline_code VARCHAR,
            latency_ms BIGINT, three_ds VARCHAR, is_retry BOOLEAN)"""
    )
    conn.executemany(
        "INSERT INTO transactions VALUES "
        "(?, ?, ?, ?, 'card', 'visa', ?, 'BRL', 1000, ?, ?, 300, ?, false)",
        [
            (f"t{i}", ts, m, p, c, s, code, tds)
            for i, (ts, m, p, c, s, code, tds) in enumerate(rows)
        ],
    )
    return Dataset(
        conn=conn,
        source=Path("mem.csv"),
        dimensions=["merchant_id", "processor", "issuer_country"],
        rows=len(rows),
    )


def _rows(
    n: int,
    ts: datetime,
    processor: str,
    country: str,
    status: str,
    code: str = "",
    three_ds: str = "none",
    merchant: str = "m1",
) -> list[Row]:
    return [(ts.replace(tzinfo=None), merchant, processor, country, status, code, three_ds)] * n


@pytest.fixture(scope="module")
def incident() -> Dataset:
    b = datetime(2026, 3, 1, 3)
    c = datetime(2026, 3, 1, 6, 30)
    rows: list[Row] = []
    # baseline: acq_a 90/100 in BR, acq_b 85/100 in BR, acq_a 50/50 in MX
    rows += _rows(90, b, "acq_a", "BR", "approved") + _rows(10, b, "acq_a", "BR", "declined", "05")
    rows += _rows(85, b, "acq_b", "BR", "approved") + _rows(15, b, "acq_b", "BR", "declined", "51")
    rows += _rows(50, b, "acq_a", "MX", "approved")
    # current: acq_a in BR has an outage
    rows += _rows(40, c, "acq_a", "BR", "approved") + _rows(
        50, c, "acq_a", "BR", "error", "timeout"
    )
    rows += _rows(6, c, "acq_a", "BR", "declined", "1A", "failed") + _rows(
        4, c, "acq_a", "BR", "declined", ""
    )
    rows += _rows(80, c, "acq_b", "BR", "approved") + _rows(20, c, "acq_b", "BR", "declined", "51")
    rows += _rows(30, c, "acq_a", "MX", "approved")
    # the window bounds: start is in, end is out
    rows += _rows(1, CURRENT.start, "acq_c", "BR", "approved")
    rows += _rows(1, CURRENT.end, "acq_c", "BR", "declined", "05")
    return _dataset(rows)


def test_pinned_segment_compares_every_processor_on_the_same_traffic(incident: Dataset) -> None:
    snap = snapshot(incident, BASELINE, CURRENT, {"processor": "acq_a", "issuer_country": "BR"})

    assert (snap.attempts, snap.approved) == (100, 40)
    assert (snap.baseline_attempts, snap.baseline_approved) == (100, 90)
    assert snap.success_rate == pytest.approx(0.40)
    assert snap.baseline_success_rate == pytest.approx(0.90)
    # failures by code, only the segment's, empty codes left out
    assert dict(snap.decline_codes) == {"timeout": 50, "1A": 6}
    assert snap.three_ds_failed == 6
    # every current-window attempt in the data set, any segment; end bound excluded
    assert snap.total_attempts == 100 + 100 + 30 + 1
    assert set(snap.routes) == {"acq_a", "acq_b", "acq_c"}
    a, b = snap.routes["acq_a"], snap.routes["acq_b"]
    assert (a.attempts, a.approved, a.errors) == (100, 40, 50)
    assert (b.attempts, b.approved, b.errors) == (100, 80, 0)
    assert b.success_rate == pytest.approx(0.8)
    assert b.baseline_success_rate == pytest.approx(0.85)
    c = snap.routes["acq_c"]
    assert (c.attempts, c.approved, c.baseline_attempts) == (1, 1, 0)
    assert c.baseline_success_rate == 0.0


def test_unpinned_segment_is_the_sum_of_its_routes(incident: Dataset) -> None:
    snap = snapshot(incident, BASELINE, CURRENT, {"issuer_country": "BR"})

    assert snap.attempts == sum(r.attempts for r in snap.routes.values()) == 201
    assert snap.approved == 121
    assert snap.baseline_attempts == 200
    assert dict(snap.decline_codes) == {"timeout": 50, "1A": 6, "51": 20}


def test_all_traffic_and_absent_segments(incident: Dataset) -> None:
    everything = snapshot(incident, BASELINE, CURRENT, {})
    assert everything.attempts == everything.total_attempts == 231

    nobody = snapshot(incident, BASELINE, CURRENT, {"issuer_country": "ZZ"})
    assert (nobody.attempts, nobody.success_rate, dict(nobody.routes)) == (0, 0.0, {})
    assert dict(nobody.decline_codes) == {}
    assert nobody.total_attempts == 231


def test_segment_values_are_bound_not_formatted(incident: Dataset) -> None:
    snap = snapshot(incident, BASELINE, CURRENT, {"merchant_id": "m1' OR '1'='1"})
    assert snap.attempts == 0


def test_window_bounds_in_another_timezone_mean_the_same_instant(incident: Dataset) -> None:
    plus2 = timezone(timedelta(hours=2))
    current = TimeWindow(
        start=datetime(2026, 3, 1, 8, tzinfo=plus2), end=datetime(2026, 3, 1, 9, tzinfo=plus2)
    )
    assert snapshot(incident, BASELINE, current, {}) == snapshot(incident, BASELINE, CURRENT, {})


def test_unknown_dimension_names_the_column(incident: Dataset) -> None:
    with pytest.raises(DataError, match="bin_range"):
        snapshot(incident, BASELINE, CURRENT, {"bin_range": "4111"})


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.generate import generate_scenario

    return generate_scenario(tmp_path_factory.mktemp("routes"), "processor_outage", 5, 12_000)


def test_the_cube_and_the_rows_give_the_same_snapshot(outage: Path) -> None:
    from tools.data import load
    from tools.observe import resolve_windows

    with_processor = load(outage)  # processor is a dimension: snapshots read the cube
    without = load(outage, dimensions=["merchant_id", "issuer_country", "card_network"])
    baseline, current = resolve_windows(with_processor, None, None)
    seg = with_processor.conn.execute(
        "SELECT processor, issuer_country, card_network FROM transactions LIMIT 1"
    ).fetchone()
    assert seg is not None
    processor, country, network = (str(v) for v in seg)
    segments = [
        {},
        {"processor": processor},
        {"processor": processor, "issuer_country": country},
        {"issuer_country": country, "card_network": network},
        {"processor": "nobody"},
    ]
    for segment in segments:
        a = snapshot(with_processor, baseline, current, segment)
        b = snapshot(without, baseline, current, segment)
        assert a == b, segment
        assert (a.routes and a.decline_codes) or segment == {"processor": "nobody"}


def test_snapshots_read_the_cube_not_the_file(outage: Path, tmp_path: Path) -> None:
    import shutil

    from tools.config import ObserveConfig
    from tools.data import load
    from tools.observe import observe

    folder = shutil.copytree(outage, tmp_path / "copy")
    ds = load(folder)
    obs = observe(ds, ObserveConfig())
    (folder / "transactions.csv.gz").unlink()  # a pass over the transactions would fail now
    segment = obs.root_cause[0]
    snap = snapshot(ds, obs.baseline, obs.current, segment)
    assert snap.attempts == obs.evidence[0].current.attempts > 0
