"""Every signal keeps the same statistical discipline, and a signal is added in one module.

Each registered signal is checked on hand-built segment tables (no files): a material
change is flagged and the same change on few units is not (a test for its volume), a
significant change below the minimum effect is not, a segment below the minimum sample
is not tested, and Benjamini-Hochberg across segments keeps noise quiet. A toy signal
(tests/toy_signal.py, written like a module of tools/signals/) plus one registration is
enough for observe to detect and localize it and for the loop, guard included, to judge
a remedy for it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.runner import run_scenario
from tests import toy_signal
from tests.segment_data import BASELINE, CURRENT, DIMENSIONS, IN_CURRENT, traffic
from tools.config import ObserveConfig
from tools.contract import RunRecord, TimeWindow
from tools.detection import detect
from tools.metrics import LATENCY_EDGES_MS, LeafKey, SegmentMetrics, SegmentTable, WindowStats
from tools.observe import observe
from tools.signals import registry
from tools.signals.names import (
    DECLINE_CODE,
    ERROR_RATE,
    HARD_DECLINE_SHARE,
    LATENCY,
    SUCCESS_RATE,
    THREE_DS_FAILURE,
    VOLUME,
    VOLUME_SURGE,
)

CFG = ObserveConfig()
START = datetime(2026, 3, 1, tzinfo=UTC)
# Windows of equal length: a pace signal's expected current count is its baseline count.
WINDOWS = (
    TimeWindow(start=START, end=START + timedelta(hours=1)),
    TimeWindow(start=START + timedelta(hours=1), end=START + timedelta(hours=2)),
)
# Latency: attempts are fast (below the first edge) or slow (at 2 s).
SLOW_MS = 2000.0

Window = Callable[[int, float], WindowStats]


def _latency(n: int, slow: int) -> tuple[int, ...]:
    return tuple(n if edge <= 100 else slow if edge <= SLOW_MS else 0 for edge in LATENCY_EDGES_MS)


def _rate_window(field: str, units: str = "attempts", **fixed: int) -> Window:
    """Windows of `n` units of which a share `rate` are bad, counted in `field`."""

    def make(n: int, rate: float) -> WindowStats:
        bad = round(n * rate)
        counts = {units: n, field: bad, **fixed}
        counts.setdefault("attempts", n)
        counts.setdefault("approved", counts["attempts"] - counts.get("declined", 0))
        return WindowStats(**counts, latency_at_least=_latency(counts["attempts"], 0), codes=(0,))

    return make


def _failures(n: int, rate: float) -> WindowStats:
    bad = round(n * rate)
    return WindowStats(
        attempts=n, approved=n - bad, declined=bad, latency_at_least=_latency(n, 0), codes=(0,)
    )


def _errors(n: int, rate: float) -> WindowStats:
    bad = round(n * rate)
    return WindowStats(
        attempts=n,
        approved=n - bad,
        errors=bad,
        gateway_errors=bad,
        latency_at_least=_latency(n, 0),
        codes=(0,),
    )


def _three_ds(n: int, rate: float) -> WindowStats:
    bad = round(n * rate)
    return WindowStats(
        attempts=n,
        approved=n - bad,
        declined=bad,
        three_ds_attempts=n,
        challenged=n,
        three_ds_failed=bad,
        latency_at_least=_latency(n, 0),
        codes=(0,),
    )


def _hard_share(n: int, rate: float) -> WindowStats:
    # n declines out of 10 n attempts; a share `rate` of them hard.
    hard = round(n * rate)
    return WindowStats(
        attempts=10 * n,
        approved=9 * n,
        declined=n,
        hard=hard,
        soft=n - hard,
        latency_at_least=_latency(10 * n, 0),
        codes=(0,),
    )


def _code(n: int, rate: float) -> WindowStats:
    bad = round(n * rate)
    return WindowStats(
        attempts=n, approved=n - bad, declined=bad, latency_at_least=_latency(n, 0), codes=(bad,)
    )


def _slow(n: int, rate: float) -> WindowStats:
    return WindowStats(
        attempts=n, approved=n, latency_at_least=_latency(n, round(n * rate)), codes=(0,)
    )


def _attempts(n: int, rate: float) -> WindowStats:
    # For pace signals "rate" is the change in attempts itself: n * (1 + rate).
    m = round(n * (1.0 + rate))
    return WindowStats(attempts=m, approved=m, latency_at_least=_latency(m, 0), codes=(0,))


# Per signal: how to build a window, a baseline "rate", and a change just past the
# minimum effect (for pace signals: the relative change of attempts; negative for a drop).
CASES: dict[str, tuple[Window, float, float]] = {
    SUCCESS_RATE: (_failures, 0.10, 0.15),
    ERROR_RATE: (_errors, 0.01, 0.05),
    THREE_DS_FAILURE: (_three_ds, 0.05, 0.30),
    HARD_DECLINE_SHARE: (_hard_share, 0.30, 0.30),
    DECLINE_CODE: (_code, 0.01, 0.06),
    LATENCY: (_slow, 0.04, 0.30),
    VOLUME: (_attempts, 0.0, -0.45),
    VOLUME_SURGE: (_attempts, 0.0, 0.6),
}


def test_every_registered_signal_is_checked_here() -> None:
    assert {s.name for s in registry.specs()} == set(CASES)


def _table(segments: dict[LeafKey, tuple[WindowStats, WindowStats]]) -> SegmentTable:
    """A table whose total is the sum of the given one-dimension segments."""
    base_total: WindowStats | None = None
    cur_total: WindowStats | None = None
    for b, c in segments.values():
        base_total = b if base_total is None else _plus(base_total, b)
        cur_total = c if cur_total is None else _plus(cur_total, c)
    assert base_total is not None and cur_total is not None
    rows = {k: SegmentMetrics(k, b, c) for k, (b, c) in segments.items()}
    rows[()] = SegmentMetrics((), base_total, cur_total)
    return SegmentTable(["segment"], 1, *WINDOWS, rows, codes=("54",))


def _plus(a: WindowStats, b: WindowStats) -> WindowStats:
    zero = WindowStats(latency_at_least=(0,) * len(a.latency_at_least), codes=(0,) * len(a.codes))
    return a.minus(zero.minus(b))


def _segments(
    name: str, changed: dict[str, tuple[int, float]], *, quiet: int = 30, n: int = 4000
) -> dict[LeafKey, tuple[WindowStats, WindowStats]]:
    """`quiet` unchanged segments of `n` units, plus `changed`: name -> (units, change)."""
    window, rate, _ = CASES[name]
    pace = name in (VOLUME, VOLUME_SURGE)
    out: dict[LeafKey, tuple[WindowStats, WindowStats]] = {}
    for i in range(quiet):
        out[(("segment", f"q{i:02d}"),)] = (window(n, rate), window(n, rate))
    for seg, (units, change) in changed.items():
        after = window(units, change) if pace else window(units, rate + change)
        out[(("segment", seg),)] = (window(units, rate), after)
    return out


def _flagged(name: str, table: SegmentTable) -> set[str]:
    found = detect(table, CFG)
    return {d.key[0][1] for d in found.detections if d.metric == name and d.key}


@pytest.mark.parametrize("name", CASES)
def test_a_material_change_is_flagged_and_the_same_on_few_units_is_not(name: str) -> None:
    _, _, change = CASES[name]
    table = _table(_segments(name, {"big": (2000, change), "few": (CFG.min_sample + 5, change)}))
    assert _flagged(name, table) == {"big"}


@pytest.mark.parametrize("name", CASES)
def test_a_change_below_the_minimum_effect_is_not_flagged(name: str) -> None:
    _, _, change = CASES[name]
    signal = next(s for s in registry.bind(_table(_segments(name, {})), CFG) if s.name == name)
    # Six tenths of the minimum effect, on enough units to be very significant.
    below = 0.6 * signal.min_effect() * (1 if change > 0 else -1)
    table = _table(_segments(name, {"huge": (200_000, below)}))
    found = detect(table, CFG)
    assert [d for d in found.detections if d.metric == name] == []
    assert (
        found.p_cutoffs[name] == 0.0
        or min(signal.p_value(signal.counts(m)) for m in table.segments.values() if m.key) < 1e-6
    )


def _tests(name: str, table: SegmentTable) -> int:
    """How many segments the signal tested (its Bonferroni level is fdr over them)."""
    return round(CFG.fdr / detect(table, CFG).strict_cutoffs[name])


@pytest.mark.parametrize("name", CASES)
def test_a_segment_below_the_minimum_sample_is_not_tested(name: str) -> None:
    _, _, change = CASES[name]
    few = CFG.min_sample // 2
    base = _table(_segments(name, {}, quiet=5))
    with_few = _table(_segments(name, {"few": (few, change)}, quiet=5))
    assert _tests(name, with_few) == _tests(name, base)


@pytest.mark.parametrize("name", CASES)
def test_noise_across_many_segments_stays_quiet(name: str) -> None:
    window, rate, change = CASES[name]
    rng = random.Random(name)
    pace = name in (VOLUME, VOLUME_SURGE)
    segments: dict[LeafKey, tuple[WindowStats, WindowStats]] = {}
    for i in range(300):
        # Each segment's current window is a draw at the baseline's own rate.
        n = 500
        if pace:
            drawn = sum(rng.random() < 0.5 for _ in range(2 * n))
            segments[(("segment", f"s{i}"),)] = (window(n, 0.0), window(drawn, 0.0))
        else:
            bad = sum(rng.random() < rate for _ in range(n))
            segments[(("segment", f"s{i}"),)] = (window(n, rate), window(n, bad / n))
    assert _flagged(name, _table(segments)) == set()
    # ...and one real change among them still stands out.
    segments[(("segment", "real"),)] = next(
        iter(_segments(name, {"real": (2000, change)}, quiet=0).values())
    )
    assert _flagged(name, _table(segments)) == {"real"}


# ---------------------------------------------------------------------------------------
# A toy signal through the whole loop.

TOY = toy_signal.SIGNAL
RETRY_STORM = (
    f"UPDATE transactions SET is_retry = true WHERE {IN_CURRENT} "
    "AND merchant_id = 'm_05' AND u2 < 0.6"
)


@pytest.fixture(scope="module")
def retry_storm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario folder where one merchant starts retrying; nothing else changes."""
    folder = tmp_path_factory.mktemp("toy-signal") / "retry-storm"
    folder.mkdir()
    ds = traffic(40_000, 3, RETRY_STORM)
    ds.conn.execute(
        "COPY (SELECT txn_id, strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts, merchant_id, processor, "
        "payment_method, card_network, issuer_country, currency, amount_minor, status, "
        "decline_code, latency_ms, three_ds, is_retry FROM transactions ORDER BY ts) "
        f"TO '{folder / 'transactions.csv'}' (FORMAT csv, HEADER true)"
    )
    spec = {
        "format_version": 1,
        "id": "retry-storm",
        "baseline_window": {"start": BASELINE.start.isoformat(), "end": BASELINE.end.isoformat()},
        "current_window": {"start": CURRENT.start.isoformat(), "end": CURRENT.end.isoformat()},
        "dimensions": DIMENSIONS,
        "context": {"processors": {f"acq_{c}": {"fee_bps": 30, "healthy": True} for c in "abcd"}},
    }
    (folder / "scenario.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder


def test_a_toy_signal_is_detected_and_localized_once_registered(retry_storm: Path) -> None:
    from tools.data import load

    assert not observe(load(retry_storm), CFG).anomalous
    with registry.registered(TOY):
        found = observe(load(retry_storm), CFG)
    assert found.anomalous
    assert found.root_cause == [{"merchant_id": "m_05"}]
    assert found.root_causes[0].metric == toy_signal.RETRY_SHARE
    assert {a.metric for a in found.anomalies} == {toy_signal.RETRY_SHARE}


def test_a_toy_signal_runs_through_the_loop_guard_included(
    retry_storm: Path, tmp_path: Path
) -> None:
    with registry.registered(TOY):
        record = run_scenario(retry_storm, state_dir=tmp_path / "run")
    assert RunRecord.model_validate_json(record.model_dump_json()) == record
    assert record.anomalous and record.root_cause == [{"merchant_id": "m_05"}]
    assert [a.metric for a in record.anomalies][:1] == [toy_signal.RETRY_SHARE]
    assert record.decision is not None
    # No incident kind claims a retry storm by what failed, and a merchant is no processor,
    # issuer or network: the reasoner can only page on-call, at a confidence under guard's
    # floor. Guard judges it like any other decision.
    assert record.decision.action == "notify_oncall"
    assert record.verdict == "blocked"
    assert {v.rule for v in record.violations} == {"min_confidence"}
