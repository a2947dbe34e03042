"""Large files are checked in one pass and read again by observe instead of being copied."""

from __future__ import annotations

from pathlib import Path

import pytest

import tools.data as data
from tools.config import ObserveConfig
from tools.data import DataError, load
from tools.generate import generate_scenario
from tools.observe import observe


@pytest.fixture
def stream_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat every CSV as large, so the streamed path runs on small test files."""
    monkeypatch.setattr(data, "STREAM_FILE_BYTES", 0)


def _rows(ds: data.Dataset) -> list[tuple[object, ...]]:
    cols = ", ".join(f'"{c}"' for c in ds.columns if c != "line")
    return ds.conn.execute(f"SELECT {cols} FROM transactions ORDER BY txn_id").fetchall()


def test_streamed_file_gives_the_same_rows_and_findings(tmp_path: Path) -> None:
    from tools.generate import GenerateOptions

    folder = generate_scenario(
        tmp_path, "processor_outage", 3, 8_000, options=GenerateOptions(file_format="csv")
    )
    copied = load(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "STREAM_FILE_BYTES", 0)
        streamed = load(folder)
    assert streamed.streamed and not copied.streamed
    assert streamed.rows == copied.rows
    assert _rows(streamed) == _rows(copied)
    span = copied.conn.execute("SELECT min(ts), max(ts) FROM transactions").fetchone()
    assert span is not None and streamed.ts_range == (span[0], span[1])
    a, b = observe(copied, ObserveConfig()), observe(streamed, ObserveConfig())
    assert a.root_cause == b.root_cause and a.anomalies == b.anomalies


@pytest.mark.usefixtures("stream_everything")
def test_a_bad_row_in_a_large_file_is_still_named_by_line(tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    csv.write_text(
        "txn_id,ts,merchant_id,processor,payment_method,currency,amount_minor,status,latency_ms\n"
        "t1,2026-03-01T10:00:00Z,m1,acq_a,card,EUR,100,approved,200\n"
        "t2,2026-03-01T10:00:01Z,m1,acq_a,card,EUR,100,aproved,200\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as err:
        load(csv)
    assert (err.value.line, err.value.column) == (3, "status")


@pytest.mark.usefixtures("stream_everything")
def test_a_duplicate_in_a_large_file_is_still_named_by_line(tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    csv.write_text(
        "txn_id,ts,merchant_id,processor,payment_method,currency,amount_minor,status,latency_ms\n"
        "t1,2026-03-01T10:00:00Z,m1,acq_a,card,EUR,100,approved,200\n"
        "t1,2026-03-01T10:00:01Z,m1,acq_a,card,EUR,100,approved,200\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as err:
        load(csv)
    assert (err.value.line, err.value.column) == (3, "txn_id")
