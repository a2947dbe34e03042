"""The leaf cube per time bucket: any windows whose bounds are cuts are sums of buckets, and
give exactly what a pass over the rows for those windows gives."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tools.data import load
from tools.generate import generate_scenario
from tools.metrics import (
    TimeBuckets,
    build_leaf_cube,
    collapse_leaves,
    leaf_select,
    naive_utc,
    rollup,
    window_cube,
)
from tools.observe import resolve_windows


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_scenario(tmp_path_factory.mktemp("cube"), "network_incident", 2, 15_000)


def test_windows_made_of_several_buckets_sum_to_a_pass_over_the_rows(scenario: Path) -> None:
    ds = load(scenario)
    baseline, current = resolve_windows(ds, None, None)
    # Cuts inside the baseline and around the windows: each window spans several buckets.
    middle = baseline.start + (baseline.end - baseline.start) / 3
    extra = [middle, baseline.start - timedelta(minutes=7), current.end + timedelta(hours=1)]
    cuts = {*TimeBuckets.of(baseline, current).cuts, *map(naive_utc, extra)}
    buckets = TimeBuckets(tuple(sorted(cuts)))
    assert len(buckets.of_windows(baseline, current)[0]) > 2
    bucket, params = buckets.sql()
    ds.conn.execute(
        f"CREATE TEMP TABLE leaves AS SELECT {bucket} AS bucket, {leaf_select(ds.dimensions)}"
        f" FROM {ds.table} GROUP BY ALL",
        params,
    )
    collapse_leaves(ds.conn, "leaves", ds.dimensions, "fine")
    summed = window_cube(ds.conn, "fine", buckets, ds.dimensions, baseline, current, cube="a")
    direct = build_leaf_cube(ds.conn, ds.table, ds.dimensions, baseline, current, cube="b")
    for suffix in ("", "_counts"):
        a = ds.conn.execute(f"SELECT * FROM {summed.name}{suffix} ORDER BY ALL").fetchall()
        b = ds.conn.execute(f"SELECT * FROM {direct.name}{suffix} ORDER BY ALL").fetchall()
        assert a == b and a
    for depth in (1, 2):
        assert rollup(ds.conn, ds.dimensions, depth, baseline, current, cube="a") == rollup(
            ds.conn, ds.dimensions, depth, baseline, current, cube="b"
        )


def test_windows_whose_bounds_are_not_cuts_are_refused(scenario: Path) -> None:
    ds = load(scenario)
    baseline, current = resolve_windows(ds, None, None)
    assert ds.scan is not None and ds.scan.buckets.serves(baseline, current)
    shifted = current.model_copy(update={"start": current.start + timedelta(minutes=1)})
    assert not ds.scan.buckets.serves(baseline, shifted)
    with pytest.raises(ValueError, match="do not serve"):
        window_cube(ds.conn, ds.scan.cube, ds.scan.buckets, ds.dimensions, baseline, shifted)
    # the dataset reads the rows again instead
    cube = ds.leaf_cube(baseline, shifted)
    assert cube.current == shifted
