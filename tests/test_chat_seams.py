"""The functions chat added next to observe's: they agree with what observe computes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.segment_data import BASELINE, CURRENT, DIMENSIONS, IN_CURRENT, traffic
from tools.contract import TimeWindow
from tools.ledger import ActionLedger
from tools.metrics import (
    SegmentMetrics,
    WindowStats,
    breakdown,
    build_leaf_cube,
    dimension_values,
    key_of,
    mix_rate_split,
    rollup,
    timeline,
)
from tools.stats import rate_change_point

OUTAGE = f"""UPDATE transactions SET status = 'error', decline_code = 'timeout'
WHERE processor = 'acq_b' AND {IN_CURRENT} AND u2 < 0.5"""


def test_breakdown_gives_the_metrics_rollup_gives() -> None:
    ds = traffic(20_000, 1, OUTAGE)
    build_leaf_cube(ds.conn, ds.table, DIMENSIONS, BASELINE, CURRENT)
    table = rollup(ds.conn, DIMENSIONS, 2, BASELINE, CURRENT)
    for segment in ({}, {"processor": "acq_b"}, {"issuer_country": "BR", "processor": "acq_a"}):
        (whole,) = breakdown(ds.conn, DIMENSIONS, segment).values()
        assert whole == table.get(key_of(segment, DIMENSIONS))
    children = breakdown(ds.conn, DIMENSIONS, {"card_network": "visa"}, ["processor"])
    assert sorted(dict(k)["processor"] for k in children) == ["acq_a", "acq_b", "acq_c", "acq_d"]
    for key, m in children.items():
        assert m == table.get(key)
    (none,) = breakdown(ds.conn, DIMENSIONS, {"processor": "nobody"}).values()
    assert none.current.attempts == 0 and none.baseline.attempts == 0


def test_timeline_buckets_add_up_and_show_the_onset() -> None:
    ds = traffic(20_000, 2, OUTAGE)
    window = TimeWindow(start=BASELINE.start, end=CURRENT.end)
    buckets = timeline(ds.conn, ds.table, {"processor": "acq_b"}, window, 30)
    build_leaf_cube(ds.conn, ds.table, DIMENSIONS, BASELINE, CURRENT)
    (m,) = breakdown(ds.conn, DIMENSIONS, {"processor": "acq_b"}).values()
    assert sum(b.attempts for b in buckets) == m.baseline.attempts + m.current.attempts
    assert sum(b.approved for b in buckets) == m.baseline.approved + m.current.approved
    assert all(b.all_attempts >= b.attempts for b in buckets)
    assert [b.start.minute for b in buckets] == [0, 30] * 7
    onset = rate_change_point([(b.attempts, b.attempts - b.approved) for b in buckets])
    assert onset is not None and buckets[onset].start == CURRENT.start


def test_change_point_needs_a_rise() -> None:
    assert rate_change_point([(100, 10)] * 6) is None
    assert rate_change_point([(100, 40), (100, 40), (100, 10), (100, 10)]) is None
    assert rate_change_point([(100, 10), (100, 11), (100, 40), (100, 42)]) == 2
    assert rate_change_point([(100, 10)]) is None


def _segment(name: str, base: tuple[int, int], cur: tuple[int, int]) -> SegmentMetrics:
    key = (("processor", name),)
    return SegmentMetrics(
        key,
        WindowStats(attempts=base[0], approved=base[1]),
        WindowStats(attempts=cur[0], approved=cur[1]),
    )


def test_mix_and_rate_add_up_to_the_change() -> None:
    # Rates unchanged, traffic moved to the worse route: all mix.
    a, b = _segment("a", (500, 450), (200, 180)), _segment("b", (500, 350), (800, 560))
    parent = SegmentMetrics((), WindowStats(attempts=1000, approved=800),
                            WindowStats(attempts=1000, approved=740))  # fmt: skip
    split = mix_rate_split(parent, [a, b])
    assert split.total == pytest.approx(-0.06)
    assert split.rate == pytest.approx(0.0)
    assert split.mix == pytest.approx(-0.06)
    # Same mix, one route's rate halves: all rate.
    a, b = _segment("a", (500, 450), (500, 225)), _segment("b", (500, 350), (500, 350))
    parent = SegmentMetrics((), WindowStats(attempts=1000, approved=800),
                            WindowStats(attempts=1000, approved=575))  # fmt: skip
    split = mix_rate_split(parent, [a, b])
    assert split.mix == pytest.approx(0.0)
    assert split.rate == pytest.approx(split.total) == pytest.approx(-0.225)


def test_dimension_values_lists_every_value_most_frequent_first() -> None:
    ds = traffic(5_000, 3)
    found = dimension_values(ds.conn, ds.table, ["processor", "payment_method"])
    assert sorted(found["processor"]) == ["acq_a", "acq_b", "acq_c", "acq_d"]
    assert list(found["payment_method"]) == ["card", "wallet"]
    assert sum(found["processor"].values()) == 5_000


def test_ledger_lists_its_entries_newest_first(tmp_path: Path) -> None:
    times = iter(datetime(2026, 3, 1, h, tzinfo=UTC) for h in range(1, 10))
    with ActionLedger(tmp_path / "ledger.db", clock=lambda: next(times)) as ledger:
        for key in ("k1", "k2", "k3"):
            ledger.claim(key, thread_id="t", scenario_id="s", action="notify_oncall", params={})
        ledger.record_outcome("k2", {"ok": True})
        recent = ledger.recent(2)
    assert [(e.idempotency_key, e.status) for e in recent] == [
        ("k3", "claimed"),
        ("k2", "executed"),
    ]
