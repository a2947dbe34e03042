"""A file payops writes is whole or absent, whoever fills it (tools/output.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.output import atomic_path, atomic_writer


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "records.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["records.jsonl"]


def test_another_writer_fills_the_path_it_is_given(tmp_path: Path) -> None:
    target = tmp_path / "new" / "bad_rows.csv"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        tmp.write_text("line,column\n")  # as DuckDB's COPY would
    assert target.read_text() == "line,column\n"
    assert [p.name for p in target.parent.iterdir()] == ["bad_rows.csv"]
