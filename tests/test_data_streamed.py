"""Files are checked and cubed in one pass, not copied: the same rows and findings as the
copying path (which only files with bad rows take), and bad rows still named by line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tools.data as data
from tools.config import ObserveConfig
from tools.data import DataError, load
from tools.generate import generate_scenario
from tools.observe import observe


def _rows(ds: data.Dataset) -> list[tuple[object, ...]]:
    cols = ", ".join(f'"{c}"' for c in ds.columns if c != "line")
    return ds.conn.execute(f"SELECT {cols} FROM transactions ORDER BY txn_id").fetchall()


def test_one_pass_gives_the_same_rows_and_findings_as_the_copying_path(tmp_path: Path) -> None:
    from tools.generate import GenerateOptions

    folder = generate_scenario(
        tmp_path, "processor_outage", 3, 8_000, options=GenerateOptions(file_format="csv")
    )
    streamed = load(folder)
    # One bad row sends a copy down the copying path; lenient mode keeps the rest.
    other = shutil.copytree(folder, tmp_path / "with-a-bad-row")
    with open(other / "transactions.csv", "a", encoding="utf-8") as fh:
        fh.write("bad,2026-03-01T10:00:00Z,m1,acq_a,card,,,EUR,100,aproved,,200,,false\n")
    copied = load(other, lenient=True)
    assert streamed.streamed and streamed.scan is not None
    assert not copied.streamed and copied.scan is None and copied.quarantined == 1
    assert streamed.rows == copied.rows
    assert _rows(streamed) == _rows(copied)
    span = copied.conn.execute("SELECT min(ts), max(ts) FROM transactions").fetchone()
    assert span is not None and streamed.ts_range == (span[0], span[1])
    a, b = observe(streamed, ObserveConfig()), observe(copied, ObserveConfig())
    assert a == b


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


def test_a_file_out_of_time_order_still_gets_the_right_windows(tmp_path: Path) -> None:
    # The load cuts its pass at windows guessed from the first and last rows; a file
    # whose rows are not in time order makes a wrong guess, which costs a second pass,
    # never a wrong answer.
    from tools.generate import GenerateOptions

    folder = generate_scenario(
        tmp_path, "processor_degradation", 4, 9_000, options=GenerateOptions(file_format="csv")
    )
    lines = (folder / "transactions.csv").read_text().splitlines()
    ordered = tmp_path / "ordered.csv"
    ordered.write_text("\n".join(lines) + "\n")
    shuffled = tmp_path / "shuffled.csv"
    body = lines[1:]
    body = body[len(body) // 3 :] + body[: len(body) // 3]  # the last rows come first
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    a, b = load(ordered), load(shuffled)
    assert a.scan is not None and b.scan is not None
    ours = observe(b, ObserveConfig())
    assert a.scan.buckets.serves(ours.baseline, ours.current)
    assert not b.scan.buckets.serves(ours.baseline, ours.current)
    assert ours == observe(a, ObserveConfig())
