"""The transaction reader: CONTRACT.md section 1 rules, the four formats, scenario folders,
lenient quarantine. Every bad input must name the file, line and column a user fixes."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tools.data import (
    CONTRACT_COLUMNS,
    REQUIRED_COLUMNS,
    DataError,
    Dataset,
    load,
)

GOOD: dict[str, str] = {
    "txn_id": "t1",
    "ts": "2026-03-01T10:15:02Z",
    "merchant_id": "m_1",
    "processor": "acq_a",
    "payment_method": "card",
    "card_network": "visa",
    "issuer_country": "BR",
    "currency": "BRL",
    "amount_minor": "1250",
    "status": "approved",
    "decline_code": "",
    "latency_ms": "310",
    "three_ds": "none",
    "is_retry": "false",
}


def rows(n: int, **changes: dict[str, str]) -> list[dict[str, str]]:
    """`n` good rows t1..tn; `changes` maps a txn_id to the values it overrides."""
    out = []
    for i in range(1, n + 1):
        r = {**GOOD, "txn_id": f"t{i}", "ts": f"2026-03-01T10:{i % 60:02d}:00Z"}
        r.update(changes.get(f"t{i}", {}))
        out.append(r)
    return out


def csv_text(data: list[dict[str, str]], columns: list[str] | None = None) -> str:
    """CSV as a user writes it: header line, then one line per row, quotes only if needed."""
    cols = columns or list(data[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for r in data:
        writer.writerow([r.get(c, "") for c in cols])
    return buf.getvalue()


def write_csv(folder: Path, data: list[dict[str, str]], name: str = "data.csv", **kw: Any) -> Path:
    path = folder / name
    path.write_text(csv_text(data, **kw), encoding="utf-8")
    return path


def convert(src: Path, dest: Path, *, typed: bool = False) -> Path:
    """The same rows as `dest`'s format (.csv.gz, .parquet, .jsonl), written by DuckDB.

    `typed` writes ts/amounts/is_retry as native types, as other tools would."""
    con = duckdb.connect()
    select = "SELECT * FROM read_csv($src, all_varchar = true, header = true)"
    if typed:
        select = (
            "SELECT * REPLACE (ts::TIMESTAMPTZ AS ts, amount_minor::BIGINT AS amount_minor,"
            " latency_ms::BIGINT AS latency_ms, is_retry::BOOLEAN AS is_retry)"
            " FROM read_csv($src, all_varchar = true, header = true)"
        )
    name = dest.name
    fmt = (
        "FORMAT csv, HEADER, COMPRESSION gzip"
        if name.endswith(".csv.gz")
        else "FORMAT parquet"
        if name.endswith(".parquet")
        else "FORMAT json"
    )
    con.execute(f"COPY ({select}) TO $dest ({fmt})", {"src": str(src), "dest": str(dest)})
    return dest


def table(ds: Dataset, order: str = "txn_id") -> list[tuple[Any, ...]]:
    return ds.conn.execute(f"SELECT * FROM {ds.table} ORDER BY {order}").fetchall()


def bad_load(path: Path, **kw: Any) -> DataError:
    with pytest.raises(DataError) as exc:
        load(path, **kw)
    return exc.value


# --- reading ------------------------------------------------------------------------------


def test_columns_types_and_values(tmp_path: Path) -> None:
    data = rows(
        3,
        t2={"ts": "2026-03-01T12:00:00+02:00", "is_retry": "TRUE", "card_network": ""},
        t3={"status": "declined", "decline_code": "51", "three_ds": "", "is_retry": "1"},
    )
    ds = load(write_csv(tmp_path, data))
    types = dict(
        ds.conn.execute(f"SELECT column_name, column_type FROM (DESCRIBE {ds.table})").fetchall()
    )
    assert list(types) == [*CONTRACT_COLUMNS, "line"]
    assert types["ts"] == "TIMESTAMP"
    assert types["amount_minor"] == types["latency_ms"] == types["line"] == "BIGINT"
    assert types["is_retry"] == "BOOLEAN"
    assert {types[c] for c in ("txn_id", "merchant_id", "status", "three_ds")} == {"VARCHAR"}
    got = ds.conn.execute(
        f"SELECT txn_id, ts, card_network, amount_minor, decline_code, three_ds, is_retry, line"
        f" FROM {ds.table} ORDER BY txn_id"
    ).fetchall()
    assert got == [
        # every row is good, so the file was not copied and lines are not known
        ("t1", datetime(2026, 3, 1, 10, 1), "visa", 1250, "", "none", False, None),
        # +02:00 is converted to UTC; an empty dimension is '' (not NULL)
        ("t2", datetime(2026, 3, 1, 10, 0), "", 1250, "", "none", True, None),
        ("t3", datetime(2026, 3, 1, 10, 3), "visa", 1250, "51", "", True, None),
    ]
    assert ds.rows == 3 and ds.quarantined == 0 and ds.quarantine_path is None
    # DuckDB draws a progress bar on long queries; a library must not print
    assert ds.conn.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    assert ds.dimensions == list(CONTRACT_COLUMNS[2:8])
    assert ds.source == tmp_path / "data.csv"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("False", False), ("1", True), ("0", False), ("yes", True), ("NO", False)],
)
def test_is_retry_spellings(tmp_path: Path, text: str, expected: bool) -> None:
    ds = load(write_csv(tmp_path, rows(1, t1={"is_retry": text})))
    assert ds.conn.execute(f"SELECT is_retry FROM {ds.table}").fetchall() == [(expected,)]


@pytest.mark.parametrize("ext", [".csv.gz", ".parquet", ".jsonl"])
@pytest.mark.parametrize("typed", [False, True])
def test_every_format_reads_to_the_same_table(tmp_path: Path, ext: str, typed: bool) -> None:
    data = rows(4, t2={"ts": "2026-03-01T10:02:00.250Z", "is_retry": "true"})
    data[2]["shop"] = "Кофейня №1"
    src = write_csv(tmp_path, data, columns=[*GOOD, "shop"])
    other = convert(src, tmp_path / f"other{ext}", typed=typed)
    want = table(load(src))
    got = table(load(other, dimensions=["processor", "shop"]))
    assert got == want
    # With a bad row the good ones are copied in, and each keeps its line in the file.
    data.append({**GOOD, "txn_id": "t9", "status": "aproved"})
    src = write_csv(tmp_path, data, columns=[*GOOD, "shop"])
    other = convert(src, tmp_path / f"bad{ext}", typed=typed)
    got = table(load(other, dimensions=["processor", "shop"], lenient=True))
    first_line = 2 if ext == ".csv.gz" else 1  # only CSV has a header line
    assert [r[:-1] for r in got] == [r[:-1] for r in want]
    assert [r[-1] for r in got] == list(range(first_line, first_line + 4))


def test_missing_optional_columns_get_defaults(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows(2), columns=list(REQUIRED_COLUMNS))
    ds = load(path)
    assert (
        ds.conn.execute(
            f"SELECT card_network, issuer_country, decline_code, three_ds, is_retry FROM {ds.table}"
        ).fetchall()
        == [("", "", "", "", False)] * 2
    )
    assert ds.columns == [*CONTRACT_COLUMNS, "line"]


def test_utf8_values_in_an_extra_dimension(tmp_path: Path) -> None:
    names = ["Магазин «Ромашка»", "东京商店", 'Café 🍕, "quoted"']
    data = rows(3)
    for r, shop in zip(data, names, strict=True):
        r["shop"] = shop
    ds = load(write_csv(tmp_path, data, columns=[*GOOD, "shop"]), dimensions=["shop", "processor"])
    assert ds.dimensions == ["shop", "processor"]
    assert [
        r[0] for r in ds.conn.execute(f"SELECT shop FROM {ds.table} ORDER BY txn_id").fetchall()
    ] == names
    assert ds.conn.execute(
        f"SELECT count(*) FROM {ds.table} WHERE shop = $s", {"s": names[1]}
    ).fetchone() == (1,)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(("\ufeff" + csv_text(rows(2))).replace("\n", "\r\n").encode("utf-8"))
    assert load(path).rows == 2


# --- strict mode: every rule names file, line and column -------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("status", "aproved", "unknown value 'aproved' (expected approved, declined or error)"),
        ("status", "одобрено", "unknown value 'одобрено'"),
        ("amount_minor", "-5", "negative"),
        ("amount_minor", "12.5", "not an integer: '12.5'"),
        ("amount_minor", "1e3", "not an integer"),
        ("amount_minor", "", "empty value (required)"),
        ("latency_ms", "-1", "negative"),
        ("latency_ms", "fast", "not an integer: 'fast'"),
        ("ts", "yesterday", "unparseable timestamp 'yesterday'"),
        ("ts", "2026-02-30T10:00:00Z", "unparseable timestamp"),
        ("ts", "", "empty value (required)"),
        ("txn_id", "", "empty txn_id"),
        ("three_ds", "maybe", "unknown value 'maybe'"),
        ("is_retry", "perhaps", "unknown value 'perhaps'"),
    ],
)
def test_bad_value_names_file_line_and_column(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    path = write_csv(tmp_path, rows(4, t3={column: value}))
    err = bad_load(path)
    assert (err.file, err.line, err.column) == (str(path), 4, column)
    assert reason in err.reason
    assert err.message.startswith(f"{path}, line 4, column {column}: ")


def test_duplicate_txn_id_names_both_lines(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows(5, t5={"txn_id": "t2"}))
    err = bad_load(path)
    assert (err.line, err.column) == (6, "txn_id")
    assert err.reason == "duplicate txn_id 't2' (first seen on line 3)"


def test_the_first_bad_row_in_file_order_is_reported(tmp_path: Path) -> None:
    # a duplicate on line 4 comes before a bad status on line 6
    path = write_csv(tmp_path, rows(6, t3={"txn_id": "t1"}, t5={"status": "ok"}))
    assert bad_load(path).line == 4
    path = write_csv(tmp_path, rows(6, t2={"amount_minor": "-1"}, t5={"txn_id": "t1"}))
    assert (bad_load(path).line, bad_load(path).column) == (3, "amount_minor")


def test_bad_rows_in_parquet_and_jsonl_name_the_row(tmp_path: Path) -> None:
    src = write_csv(tmp_path, rows(3, t2={"status": "aproved"}))
    for ext in (".parquet", ".jsonl"):
        err = bad_load(convert(src, tmp_path / f"data{ext}"))
        assert (err.line, err.column) == (2, "status"), ext


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_required_column(tmp_path: Path, column: str) -> None:
    path = write_csv(tmp_path, rows(2), columns=[c for c in GOOD if c != column])
    err = bad_load(path, lenient=True)  # structural: lenient mode cannot help
    assert (err.column, err.line) == (column, None)
    assert f"missing required column '{column}'" in err.reason


def test_dimension_that_is_not_a_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows(2))
    err = bad_load(path, dimensions=["processor", "bin_range"])
    assert err.column == "bin_range"
    assert "bin_range" in err.reason and "issuer_country" in err.reason  # lists the columns
    assert bad_load(path, dimensions=["amount_minor"]).column == "amount_minor"


# --- files that cannot be read --------------------------------------------------------------


def test_ragged_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    lines = csv_text(rows(4)).splitlines()
    lines[3] += ",extra"
    path.write_text("\n".join(lines) + "\n")
    err = bad_load(path)
    assert err.line == 4 and "expected 14 fields, found 15" in err.reason


def test_unterminated_quote(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    lines = csv_text(rows(3)).splitlines()
    lines[2] = lines[2].replace("m_1", '"m_1')
    path.write_text("\n".join(lines) + "\n")
    err = bad_load(path)
    assert err.line == 3 and "quote" in err.reason


def test_invalid_json_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    good = [json.dumps(r) for r in rows(4)]
    good[2] = good[2][:-5]  # cut off: not JSON any more
    path.write_text("\n".join(good) + "\n")
    err = bad_load(path)
    assert err.line == 3 and "invalid JSON" in err.reason


def test_not_gzip_and_not_parquet(tmp_path: Path) -> None:
    fake_gz = tmp_path / "data.csv.gz"
    fake_gz.write_text(csv_text(rows(2)))
    assert "not a gzip file" in bad_load(fake_gz).reason
    fake_parquet = tmp_path / "data.parquet"
    fake_parquet.write_text(csv_text(rows(2)))
    err = bad_load(fake_parquet)
    assert err.file == str(fake_parquet) and "Parquet" in err.reason


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "data.csv.gz"
    payload = gzip.compress(csv_text(rows(3000)).encode())
    path.write_bytes(payload[: len(payload) // 2])
    assert bad_load(path).file == str(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(csv_text(rows(3, t2={"merchant_id": "Caf\u00e9"})).encode("latin-1"))
    err = bad_load(path)
    assert err.line == 3 and "UTF-8" in err.reason


@pytest.mark.parametrize("content", ["", "\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    for name in ("data.csv", "data.jsonl"):
        path = tmp_path / name
        path.write_text(content)
        assert "no transactions" in bad_load(path).reason


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(",".join(GOOD) + "\n")
    assert bad_load(path).reason == "no transactions"


def test_missing_path_and_unknown_extension(tmp_path: Path) -> None:
    assert "no such file" in bad_load(tmp_path / "nope.csv").reason
    other = tmp_path / "data.xlsx"
    other.write_text("x")
    err = bad_load(other)
    assert err.file == str(other) and "unsupported file type" in err.reason


# --- scenario folders ----------------------------------------------------------------------


def scenario(
    folder: Path, spec: dict[str, Any] | str, data: list[dict[str, str]] | None = None
) -> Path:
    folder.mkdir()
    text = spec if isinstance(spec, str) else json.dumps(spec, indent=2)
    (folder / "scenario.json").write_text(text)
    if data is not None:
        write_csv(folder, data, name="transactions.csv", columns=list(data[0]))
    return folder


SPEC: dict[str, Any] = {
    "format_version": 1,
    "id": "outage-br-001",
    "baseline_window": {"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T10:00:00Z"},
    "current_window": {"start": "2026-03-01T10:00:00+00:00", "end": "2026-03-01T11:00:00Z"},
    "dimensions": ["processor", "shop"],
}


def test_scenario_folder_brings_windows_and_dimensions(tmp_path: Path) -> None:
    data = rows(3)
    for r in data:
        r["shop"] = "магазин"
    folder = scenario(tmp_path / "outage", SPEC, data)
    ds = load(folder)
    assert ds.scenario is not None and ds.scenario.id == "outage-br-001"
    assert ds.scenario.current_window is not None
    assert ds.scenario.current_window.minutes == 60
    assert ds.dimensions == ["processor", "shop"]
    assert ds.source == folder / "transactions.csv"
    assert load(folder, dimensions=["currency"]).dimensions == ["currency"]  # the caller wins


def test_scenario_formats(tmp_path: Path) -> None:
    folder = scenario(tmp_path / "s", {"id": "s"})
    src = write_csv(tmp_path, rows(2))
    convert(src, folder / "transactions.parquet")
    ds = load(folder)
    assert ds.rows == 2 and ds.dimensions == list(CONTRACT_COLUMNS[2:8])


def test_scenario_json_errors(tmp_path: Path) -> None:
    broken = scenario(tmp_path / "a", '{\n  "id": "x",\n  "dimensions": [\n}', rows(1))
    err = bad_load(broken)
    assert err.file == str(broken / "scenario.json") and err.line == 4
    assert "invalid JSON" in err.reason
    bad_window = {
        **SPEC,
        "current_window": {"start": "2026-03-01T11:00:00Z", "end": "2026-03-01T10:00:00Z"},
    }
    err = bad_load(scenario(tmp_path / "b", bad_window, rows(1)))
    assert err.file.endswith("scenario.json") and "current_window" in err.reason
    err = bad_load(scenario(tmp_path / "c", {"description": "no id"}, rows(1)))
    assert "field id" in err.reason


def test_scenario_folder_needs_exactly_one_transactions_file(tmp_path: Path) -> None:
    none = scenario(tmp_path / "none", {"id": "x"})
    assert "no transactions file" in bad_load(none).reason
    two = scenario(tmp_path / "two", {"id": "x"}, rows(1))
    convert(two / "transactions.csv", two / "transactions.jsonl")
    assert "more than one" in bad_load(two).reason
    nospec = tmp_path / "nospec"
    nospec.mkdir()
    assert bad_load(nospec).file == str(nospec / "scenario.json")


# --- lenient mode ---------------------------------------------------------------------------


def read_quarantine(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_lenient_quarantines_exactly_the_bad_rows(tmp_path: Path) -> None:
    data = rows(
        6,
        t2={"status": "aproved", "merchant_id": "Магазин"},
        t4={"amount_minor": "12.5"},
        t6={"txn_id": "t1"},
    )
    path = write_csv(tmp_path, data)
    ds = load(path, lenient=True)
    assert (ds.rows, ds.quarantined) == (3, 3)
    assert ds.quarantine_path == tmp_path / "data.quarantine.csv"
    assert [
        r[0] for r in ds.conn.execute(f"SELECT txn_id FROM {ds.table} ORDER BY line").fetchall()
    ] == ["t1", "t3", "t5"]
    assert ds.conn.execute(f"SELECT list(line ORDER BY line) FROM {ds.table}").fetchone() == (
        [2, 4, 6],
    )
    bad = read_quarantine(ds.quarantine_path)
    assert [r["line"] for r in bad] == ["3", "5", "7"]
    assert bad[0]["reason"].startswith("column status: unknown value 'aproved'")
    assert bad[0]["merchant_id"] == "Магазин"
    assert bad[1]["amount_minor"] == "12.5"  # what the file said, not a parsed value
    assert bad[2]["reason"] == "column txn_id: duplicate txn_id 't1' (first seen on line 2)"
    assert list(bad[0]) == [*GOOD, "line", "reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "data.quarantine.csv"]


def test_lenient_quarantine_dir_and_original_text(tmp_path: Path) -> None:
    data = rows(3, t2={"ts": "not a time", "is_retry": "maybe", "latency_ms": " 7 "})
    src = write_csv(tmp_path, data)
    gz = convert(src, tmp_path / "day.csv.gz")
    out = tmp_path / "q"
    ds = load(gz, lenient=True, quarantine_dir=out)
    assert ds.quarantine_path == out / "day.quarantine.csv"
    (bad,) = read_quarantine(ds.quarantine_path)
    assert (bad["ts"], bad["is_retry"], bad["latency_ms"]) == ("not a time", "maybe", " 7 ")
    assert bad["line"] == "3"


def test_lenient_on_a_clean_file_writes_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows(3))
    ds = load(path, lenient=True)
    assert (ds.rows, ds.quarantined, ds.quarantine_path) == (3, 0, None)
    assert not (tmp_path / "data.quarantine.csv").exists()


def test_lenient_with_every_row_bad(tmp_path: Path) -> None:
    path = write_csv(tmp_path, rows(2, t1={"status": "x"}, t2={"status": "y"}))
    err = bad_load(path, lenient=True)
    assert "all 2 rows quarantined" in err.reason
    assert len(read_quarantine(tmp_path / "data.quarantine.csv")) == 2


def test_lenient_still_raises_on_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(csv_text(rows(2)) + "t9,only,three\n")
    assert bad_load(path, lenient=True).line == 4
    assert not (tmp_path / "data.quarantine.csv").exists()


def test_lines_stay_right_when_the_file_is_read_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small read buffers, so a 13 MB file is scanned by several threads at once; without
    # insertion order, rows land out of file order (checked: about 90% of them move).
    monkeypatch.setattr("tools.data.CSV_BUFFER_BYTES", 1 << 20)
    path = tmp_path / "big.csv"
    n = 100_000
    duckdb.connect().execute(
        f"""COPY (
            SELECT 't' || i AS txn_id, '2026-03-01T10:15:02Z' AS ts,
                   'm_' || (i % 97) AS merchant_id,
                   'acq_a' AS processor, 'card' AS payment_method, 'visa' AS card_network,
                   'BR' AS issuer_country, 'BRL' AS currency, i AS amount_minor,
                   CASE WHEN i = {n - 7} THEN 'aproved' ELSE 'approved' END AS status,
                   '' AS decline_code, 100 + i % 900 AS latency_ms,
                   'frictionless' AS three_ds, 'false' AS is_retry, repeat('x', 80) AS note
            FROM range({n}) r(i)
        ) TO $path (FORMAT csv, HEADER)""",
        {"path": str(path)},
    )
    err = bad_load(path)
    assert (err.line, err.column) == (n - 7 + 2, "status")
    ds = load(path, lenient=True)
    assert ds.rows == n - 1
    assert ds.conn.execute(
        f"SELECT count(*) FROM {ds.table} WHERE line <> amount_minor + 2"
    ).fetchone() == (0,)


# --- hostile files that escaped as tracebacks or hangs --------------------------------------


@pytest.mark.parametrize("ts", ["10000-03-01T10:00:00Z", "0000-03-01T10:00:00Z"])
def test_a_timestamp_outside_years_1_to_9999_is_a_row_error(tmp_path: Path, ts: str) -> None:
    # DuckDB parses these, but no datetime can hold them: observe used to crash on them.
    path = write_csv(tmp_path, rows(4, t3={"ts": ts}))
    err = bad_load(path)
    assert (err.line, err.column) == (4, "ts")
    assert f"timestamp out of range '{ts}'" in err.reason
    assert load(path, lenient=True).rows == 3


def test_a_scenario_nested_too_deep_is_one_error(tmp_path: Path) -> None:
    folder = scenario(tmp_path / "deep", "[" * 100_000 + "]" * 100_000, rows(1))
    err = bad_load(folder)
    assert err.file == str(folder / "scenario.json") and "nested" in err.reason


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_scenario_linked_to_an_endless_device_is_refused(tmp_path: Path, device: str) -> None:
    folder = tmp_path / "endless"
    folder.mkdir()
    write_csv(folder, rows(1), name="transactions.csv")
    (folder / "scenario.json").symlink_to(device)
    err = bad_load(folder)
    assert err.file == str(folder / "scenario.json") and "not a regular file" in err.reason


def test_a_huge_scenario_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    folder = scenario(tmp_path / "huge", json.dumps({"id": "x", "description": "y" * (9 << 20)}))
    write_csv(folder, rows(1), name="transactions.csv")
    assert "larger than" in bad_load(folder).reason


# --- typed files are checked as they are, and judged exactly as their text would be ----------


def _type_of(value: str) -> str:
    row = duckdb.connect().execute(f"SELECT typeof({value})").fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("ts", "NULL::TIMESTAMPTZ", "empty value (required)"),
        ("ts", "'infinity'::TIMESTAMPTZ", "unparseable timestamp"),
        ("ts", "'10000-01-01 00:00:00+00'::TIMESTAMPTZ", "timestamp out of range"),
        ("ts", "TIMESTAMP '0001-01-01 00:00:00' - INTERVAL 1 DAY", "timestamp out of range"),
        ("amount_minor", "NULL::BIGINT", "empty value (required)"),
        ("amount_minor", "-1::BIGINT", "negative"),
        ("amount_minor", "18446744073709551615::UBIGINT", "not an integer"),
        # a column of doubles is refused from its first row, 1250.0 included
        ("amount_minor", "12.5::DOUBLE", "not an integer: '1250.0'"),
        ("latency_ms", "NULL::INTEGER", "empty value (required)"),
        ("latency_ms", "-3::SMALLINT", "negative"),
        ("is_retry", "2::INTEGER", "unknown value '2'"),
    ],
)
def test_a_bad_typed_value_is_named_like_its_text(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    src = write_csv(tmp_path, rows(3))
    typed = {
        "ts": "ts::TIMESTAMPTZ",
        "amount_minor": "amount_minor::BIGINT",
        "latency_ms": "latency_ms::INTEGER",
        "is_retry": "is_retry::BOOLEAN",
    }
    # The column keeps the bad value's type; the good rows hold values of that type too.
    typed[column] = (
        f"CASE WHEN txn_id = 't2' THEN {value} ELSE {typed[column]} END::{_type_of(value)}"
    )
    path = tmp_path / "typed.parquet"
    duckdb.connect().execute(
        f"COPY (SELECT * REPLACE ({', '.join(f'{e} AS {c}' for c, e in typed.items())})"
        " FROM read_csv($src, all_varchar = true)) TO $dest (FORMAT parquet)",
        {"src": str(src), "dest": str(path)},
    )
    err = bad_load(path)
    assert (err.line, err.column) == (1 if "DOUBLE" in value else 2, column)
    assert reason in err.reason
    if "DOUBLE" not in value:
        assert load(path, lenient=True).rows == 2


def test_good_typed_values_load_as_their_text_does(tmp_path: Path) -> None:
    data = rows(4, t2={"is_retry": "true", "ts": "2026-03-01T10:02:00.250Z"})
    src = write_csv(tmp_path, data)
    path = tmp_path / "typed.parquet"
    duckdb.connect().execute(
        "COPY (SELECT * REPLACE (ts::TIMESTAMP AS ts, amount_minor::UINTEGER AS amount_minor,"
        " latency_ms::SMALLINT AS latency_ms, NULLIF(is_retry, 'false')::BOOLEAN AS is_retry)"
        " FROM read_csv($src, all_varchar = true)) TO $dest (FORMAT parquet)",
        {"src": str(src), "dest": str(path)},
    )
    assert table(load(path)) == table(load(src))


def test_data_ending_in_the_last_minute_of_9999_is_one_error(tmp_path: Path) -> None:
    # A valid timestamp, but the inferred window would end past what a datetime holds.
    from tools.config import ObserveConfig
    from tools.observe import observe

    path = write_csv(tmp_path, rows(3, t3={"ts": "9999-12-31T23:59:30Z"}))
    with pytest.raises(DataError, match="cannot infer windows"):
        observe(load(path), ObserveConfig())
