"""Which columns become segment dimensions: a user's extra columns are used when their
cardinality is sensible, skipped with a reason otherwise, and `--dimensions` adjusts.

Before tools/dimensions.py, an extra column was ignored unless `--dimensions` named it, and
`--dimensions mcc` replaced the six defaults: a drop on `mcc=7995, issuer_country=BR` came
out as an issuer outage on `issuer_country=BR`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tools import dimensions as dims_module
from tools.contract import DEFAULT_DIMENSIONS
from tools.data import DataError, load
from tools.dimensions import (
    MAX_VALUES,
    ColumnProfile,
    DimensionSpecError,
    choose_dimensions,
    columns_to_probe,
)

CONTRACT = ["txn_id", "ts", "merchant_id", "processor", "payment_method", "currency",
            "amount_minor", "status", "latency_ms"]  # fmt: skip
COLUMNS = [*CONTRACT, "mcc", "bin", "order_ref", "channel", "empty"]
PROFILES = {
    "mcc": ColumnProfile(rows=5000, non_empty=5000, distinct=12),
    "bin": ColumnProfile(rows=5000, non_empty=5000, distinct=1800),
    "order_ref": ColumnProfile(rows=5000, non_empty=5000, distinct=5000),
    "channel": ColumnProfile(rows=5000, non_empty=5000, distinct=1),
    "empty": ColumnProfile(rows=5000, non_empty=0, distinct=0),
}


def test_extra_columns_of_sensible_cardinality_join_the_defaults() -> None:
    choice = choose_dimensions(COLUMNS, None, None, PROFILES)
    assert choice.used == (*DEFAULT_DIMENSIONS, "mcc")
    assert choice.added == ("mcc",)
    assert choice.origin == "defaults"
    reasons = {s.name: s.reason for s in choice.skipped}
    assert reasons["bin"] == "too many values (1,800 values in the first 5,000 rows; at most 100)"
    assert reasons["order_ref"].startswith("looks like an identifier (5,000 values")
    assert reasons["channel"] == "one value only in the first 5,000 rows: nothing to compare"
    assert reasons["empty"] == "always empty in the first 5,000 rows"


def test_many_values_that_are_not_an_id_are_skipped_with_the_bound() -> None:
    profile = {"city": ColumnProfile(rows=100_000, non_empty=100_000, distinct=MAX_VALUES + 1)}
    choice = choose_dimensions([*CONTRACT, "city"], None, None, profile)
    assert "city" not in choice.used
    assert choice.skipped[0].reason == (
        f"too many values ({MAX_VALUES + 1} values in the first 100,000 rows; "
        f"at most {MAX_VALUES})"
    )


def test_plus_and_minus_adjust_the_defaults_and_plus_overrides_a_skip() -> None:
    choice = choose_dimensions(COLUMNS, ["+bin", "-currency"], None, PROFILES)
    assert "bin" in choice.used and "mcc" in choice.used and "currency" not in choice.used
    reasons = {s.name: s.reason for s in choice.skipped}
    assert "bin" not in reasons
    assert reasons["currency"] == "removed by --dimensions"
    assert choice.origin == "option"


def test_a_plain_list_replaces_everything_and_probes_nothing() -> None:
    assert columns_to_probe(COLUMNS, ["mcc", "processor"], None) == []
    choice = choose_dimensions(COLUMNS, ["mcc", "processor"], None, {})
    assert choice.used == ("mcc", "processor") and choice.skipped == ()


def test_a_scenario_list_is_the_base_and_extras_are_not_added() -> None:
    listed = ["processor", "issuer_country", "channel"]
    assert columns_to_probe(COLUMNS, None, listed) == []
    choice = choose_dimensions(COLUMNS, ["+mcc"], listed, {})
    assert choice.used == ("processor", "issuer_country", "channel", "mcc")


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (["mcc", "+bin"], "mixes a list with +name/-name"),
        (["+nope"], "--dimensions +nope: not a column"),
        (["-mcc_code"], "--dimensions -mcc_code: not a dimension"),
    ],
)
def test_bad_adjustments_are_named(requested: list[str], message: str) -> None:
    with pytest.raises(DimensionSpecError, match=re.escape(message)):
        choose_dimensions(COLUMNS, requested, None, PROFILES)


def _write(path: Path, rows: int, *, late_values: bool = False) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([*CONTRACT, "mcc", "order_ref"])
        for i in range(rows):
            mcc = f"{7000 + i}" if late_values and i >= rows // 2 else ["5411", "7995"][i % 2]
            out.writerow(
                [f"t{i}", f"2026-03-01T{10 + i * 2 // rows:02d}:{i % 60:02d}:00Z", "m1", "acq_a",
                 "card", "EUR", 100, "approved", 200, mcc, f"ref-{i}"]
            )  # fmt: skip
    return path


def test_load_uses_the_extra_column_and_says_why_the_id_is_skipped(tmp_path: Path) -> None:
    ds = load(_write(tmp_path / "t.csv", 400))
    assert ds.dimensions == [*DEFAULT_DIMENSIONS, "mcc"]
    assert ds.dimension_choice is not None
    assert [s.name for s in ds.dimension_choice.skipped] == ["order_ref"]


def test_the_probe_reads_the_head_of_the_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 400 distinct mcc values after row 200: a full scan would call mcc an identifier.
    monkeypatch.setattr("tools.data.PROBE_ROWS", 200)
    ds = load(_write(tmp_path / "t.csv", 400, late_values=True))
    assert "mcc" in ds.dimensions
    assert dims_module.PROBE_ROWS == 100_000  # the documented bound is unchanged


def test_load_names_a_bad_adjustment_as_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"t\.csv, column nope: --dimensions \+nope"):
        load(_write(tmp_path / "t.csv", 50), dimensions=["+nope"])
