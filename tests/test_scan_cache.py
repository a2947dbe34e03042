"""The scan cache: a file loaded before is not read again, one that only grew is read for its
new rows only, and the answer is always the one a full read gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import tools.scan_cache as scan_cache
from tools.config import ObserveConfig
from tools.data import DataError, Dataset, load
from tools.generate import GenerateOptions, generate_scenario
from tools.observe import observe
from tools.scan import Scan, scan
from tools.scan_cache import ScanCache


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    return generate_scenario(
        folder, "processor_outage", 7, 20_000, options=GenerateOptions(file_format="csv")
    )


@pytest.fixture
def folder(source: Path, tmp_path: Path) -> Path:
    return shutil.copytree(source, tmp_path / "scenario")


@pytest.fixture
def cache(tmp_path: Path) -> ScanCache:
    return ScanCache(tmp_path / "state" / "cache", min_bytes=0)


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of every pass the cache makes over a file (whole or appended part)."""
    seen: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Scan:
        found = scan(*args, **kwargs)
        seen.append(found.rows)
        return found

    monkeypatch.setattr(scan_cache, "scan", counting)
    return seen


def csv_of(folder: Path) -> Path:
    return folder / "transactions.csv"


def result(ds: Dataset) -> str:
    return json.dumps(observe(ds, ObserveConfig()).model_dump(mode="json"), sort_keys=True)


def full_read(folder: Path) -> str:
    return result(load(folder))


def append_rows(folder: Path, n: int, suffix: str = "again", **change: str) -> list[str]:
    """Append `n` rows of the current window again, under new ids; returns the lines."""
    lines = csv_of(folder).read_text().splitlines()
    header = lines[0].split(",")
    spec = json.loads((folder / "scenario.json").read_text())
    start = spec["current_window"]["start"]
    rows = [line.split(",") for line in lines[1:]]
    picked = [r for r in rows if r[header.index("ts")] >= start][:n]
    out = []
    for r in picked:
        r = list(r)
        r[header.index("txn_id")] += f"-{suffix}"
        for column, value in change.items():
            r[header.index(column)] = value
        out.append(",".join(r))
    with open(csv_of(folder), "a") as fh:
        fh.write("".join(line + "\n" for line in out))
    return out


def test_a_file_read_before_is_not_read_again(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    first = result(load(folder, cache=cache))
    assert passes == [20_000]
    again = load(folder, cache=cache)
    assert passes == [20_000]  # no pass at all
    assert again.rows == 20_000 and result(again) == first


def test_a_file_that_grew_is_read_for_its_new_rows_only(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    load(folder, cache=cache)
    append_rows(folder, 700)
    grown = load(folder, cache=cache)
    assert passes == [20_000, 700]
    assert grown.rows == 20_700
    assert result(grown) == full_read(folder)
    # and the entry now covers the grown file: nothing new, nothing read
    append_rows(folder, 300, suffix="more")
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 700, 300]


def test_an_edited_file_is_read_again_in_full(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    load(folder, cache=cache)
    text = csv_of(folder).read_text()
    # Same length, same dates: only the bytes tell.
    at = text.index(",approved,", len(text) // 2)
    csv_of(folder).write_text(text[:at] + ",declined," + text[at + 10 :])
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 20_000]


def test_an_edited_and_appended_file_is_read_again_in_full(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    load(folder, cache=cache)
    text = csv_of(folder).read_text()
    at = text.index(",approved,", 100)
    csv_of(folder).write_text(text[:at] + ",declined," + text[at + 10 :])
    append_rows(folder, 50)
    assert result(load(folder, cache=cache)) == full_read(folder)
    # The new rows are read while the old bytes are checked; then the whole file is.
    assert passes == [20_000, 50, 20_050]


def test_a_new_row_repeating_an_old_id_is_named_by_line(folder: Path, cache: ScanCache) -> None:
    load(folder, cache=cache)
    lines = csv_of(folder).read_text().splitlines()
    old_id = lines[5].split(",")[0]
    appended = append_rows(folder, 3)
    with open(csv_of(folder), "a") as fh:
        fh.write(old_id + appended[0][appended[0].index(",") :] + "\n")
    with pytest.raises(DataError) as err:
        load(folder, cache=cache)
    assert (err.value.line, err.value.column) == (len(lines) + 4, "txn_id")
    assert "first seen on line 6" in err.value.reason


def test_a_bad_new_row_is_named_by_line(folder: Path, cache: ScanCache) -> None:
    load(folder, cache=cache)
    lines = len(csv_of(folder).read_text().splitlines())
    append_rows(folder, 2, status="aproved")
    with pytest.raises(DataError) as err:
        load(folder, cache=cache)
    assert (err.value.line, err.value.column) == (lines + 1, "status")


def test_rows_appended_to_an_unfinished_last_line_are_read_again_in_full(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    data = csv_of(folder)
    data.write_bytes(data.read_bytes().rstrip(b"\n"))
    load(folder, cache=cache)
    with open(data, "a") as fh:
        fh.write("\n")
    append_rows(folder, 10)
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 20_010]


def test_a_replaced_or_shortened_file_is_read_again(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    load(folder, cache=cache)
    data = csv_of(folder)
    copy = data.with_suffix(".copy")
    shutil.copyfile(data, copy)
    copy.replace(data)  # the same bytes, another file
    load(folder, cache=cache)
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-100]) + "\n")
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 20_000, 19_900]


def test_other_windows_are_not_served_from_an_entry_cut_elsewhere(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    from tools.contract import TimeWindow

    load(folder, cache=cache)
    spec = json.loads((folder / "scenario.json").read_text())
    current = TimeWindow.model_validate(spec["current_window"])
    shifted = TimeWindow(start=current.start.replace(minute=17), end=current.end)
    ds = load(folder, cache=cache, current=shifted)
    assert passes == [20_000, 20_000]
    ref = load(folder, current=shifted)
    assert result(ds) == result(ref)


def test_a_crash_while_writing_leaves_no_half_entry(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scan_cache, "_write_atomic", crash)  # the manifest is never written
        load(folder, cache=cache)
    entries = list((cache.root / "scans").iterdir())
    assert entries and not any((e / "manifest.json").exists() for e in entries)
    append_rows(folder, 40)
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 20_040]


def test_an_unreadable_entry_is_a_miss(folder: Path, cache: ScanCache, passes: list[int]) -> None:
    load(folder, cache=cache)
    (entry,) = list((cache.root / "scans").iterdir())
    for part in entry.glob("counts-*.parquet"):
        part.write_bytes(b"not parquet")
    assert result(load(folder, cache=cache)) == full_read(folder)
    (entry / "manifest.json").write_text("{")
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 20_000, 20_000]


def test_an_unwritable_state_directory_only_costs_the_shortcut(
    folder: Path, tmp_path: Path, passes: list[int]
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    cache = ScanCache(blocked / "cache", min_bytes=0)
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [20_000, 20_000]


def test_a_json_lines_file_that_grew_is_read_for_its_new_rows_only(
    tmp_path: Path, cache: ScanCache, passes: list[int]
) -> None:
    folder = generate_scenario(
        tmp_path, "issuer_outage", 3, 12_000, options=GenerateOptions(file_format="jsonl")
    )
    data = folder / "transactions.jsonl"
    load(folder, cache=cache)
    lines = data.read_text().splitlines()
    again = [json.loads(line) for line in lines[-400:]]
    with open(data, "a") as fh:
        for record in again:
            fh.write(json.dumps({**record, "txn_id": record["txn_id"] + "-again"}) + "\n")
    assert result(load(folder, cache=cache)) == full_read(folder)
    assert passes == [12_000, 400]


def test_many_appends_are_merged_into_one_part(
    folder: Path, cache: ScanCache, passes: list[int]
) -> None:
    load(folder, cache=cache)
    for i in range(scan_cache.MAX_PARTS):  # the last one makes MAX_PARTS + 1
        append_rows(folder, 20, suffix=f"n{i}")
        load(folder, cache=cache)
    assert passes == [20_000] + [20] * scan_cache.MAX_PARTS
    (entry,) = list((cache.root / "scans").iterdir())
    manifest = scan_cache.Manifest.model_validate_json((entry / "manifest.json").read_bytes())
    assert len(manifest.parts) == 1
    assert {p.name for p in entry.iterdir()} == manifest.files  # nothing left behind
    assert result(load(folder, cache=cache)) == full_read(folder)
