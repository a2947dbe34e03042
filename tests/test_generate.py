"""The scenario generator writes contract-valid, reproducible data with honest ground truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from tools.contract import INCIDENT_KINDS, TRANSACTION_COLUMNS, ScenarioSpec, Segment
from tools.generate import (
    GenerateOptions,
    generate_all,
    generate_scenario,
)
from tools.sql import ident

ROWS = 20_000
SEED = 3


def _spec(folder: Path) -> ScenarioSpec:
    return ScenarioSpec.model_validate_json((folder / "scenario.json").read_text("utf-8"))


def _data_file(folder: Path) -> Path:
    (path,) = folder.glob("transactions.*")
    return path


def _table(folder: Path) -> duckdb.DuckDBPyConnection:
    """The folder's transactions as table `t`, with `cur` marking the current window."""
    spec = _spec(folder)
    assert spec.current_window is not None
    path = _data_file(folder)
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    if path.name.endswith(".parquet"):
        reader = "read_parquet($p)"
    elif path.name.endswith(".jsonl"):
        reader = "read_json($p, format = 'newline_delimited')"
    else:
        reader = "read_csv($p)"
    conn.execute(
        f"CREATE TABLE t AS SELECT *, CAST(ts AS TIMESTAMPTZ) >= CAST($cur AS TIMESTAMPTZ) AS cur"
        f" FROM {reader}",
        {"p": str(path), "cur": spec.current_window.start.isoformat()},
    )
    return conn


def _where(seg: Segment) -> tuple[str, dict[str, str]]:
    parts = [f"{ident(k)} = $v{i}" for i, k in enumerate(seg)]
    return " AND ".join(parts) or "TRUE", {f"v{i}": v for i, v in enumerate(seg.values())}


def _rates(
    conn: duckdb.DuckDBPyConnection, cond: str, params: dict[str, str]
) -> tuple[float, float]:
    row = conn.execute(
        "SELECT avg(CAST(status = 'approved' AS DOUBLE)) FILTER (NOT cur),"
        f" avg(CAST(status = 'approved' AS DOUBLE)) FILTER (cur) FROM t WHERE {cond}",
        params,
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def _per_minute(
    conn: duckdb.DuckDBPyConnection, spec: ScenarioSpec, cond: str, params: dict[str, str]
) -> tuple[float, float]:
    assert spec.baseline_window is not None and spec.current_window is not None
    row = conn.execute(
        f"SELECT count(*) FILTER (NOT cur), count(*) FILTER (cur) FROM t WHERE {cond}", params
    ).fetchone()
    assert row is not None
    return row[0] / spec.baseline_window.minutes, row[1] / spec.current_window.minutes


def _p95(conn: duckdb.DuckDBPyConnection, cond: str, params: dict[str, str]) -> tuple[float, float]:
    row = conn.execute(
        "SELECT quantile_cont(latency_ms, 0.95) FILTER (NOT cur),"
        f" quantile_cont(latency_ms, 0.95) FILTER (cur) FROM t WHERE {cond}",
        params,
    ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("all")
    return {p.name.split("-s")[0]: p for p in generate_all(out, SEED, ROWS)}


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = generate_scenario(tmp_path / "a", "processor_outage", 11, 5000)
    b = generate_scenario(tmp_path / "b", "processor_outage", 11, 5000)
    for name in ("scenario.json", "transactions.csv.gz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_different_seeds_give_different_worlds(tmp_path: Path) -> None:
    a = generate_scenario(tmp_path, "none", 1, 3000)
    b = generate_scenario(tmp_path, "none", 2, 3000)
    digest = [hashlib.sha256(_data_file(p).read_bytes()).hexdigest() for p in (a, b)]
    assert digest[0] != digest[1]
    merchants = [
        {r[0] for r in _table(p).execute("SELECT DISTINCT merchant_id FROM t").fetchall()}
        for p in (a, b)
    ]
    assert merchants[0] != merchants[1]
    assert _spec(a).baseline_window != _spec(b).baseline_window


def test_every_kind_writes_a_valid_scenario(every_kind: dict[str, Path]) -> None:
    assert set(every_kind) == set(INCIDENT_KINDS)
    for kind, folder in every_kind.items():
        spec = _spec(folder)
        assert spec.id == f"{kind}-s{SEED}"
        assert spec.expected is not None
        # At the default severity and 20k rows every injection is a real incident.
        assert spec.expected.incident_kind == kind
        assert spec.expected.anomalous == (kind != "none")
        assert len(spec.expected.root_cause) == (0 if kind == "none" else 1)
        assert not set(spec.expected.acceptable_actions) & set(spec.expected.forbidden_actions)
        assert spec.baseline_window and spec.current_window
        assert spec.baseline_window.end == spec.current_window.start
        assert spec.dimensions is not None
        for seg in spec.expected.root_cause:
            assert set(seg) <= set(spec.dimensions)


def test_transactions_follow_the_contract(every_kind: dict[str, Path]) -> None:
    folder = every_kind["processor_outage"]
    spec = _spec(folder)
    assert spec.baseline_window and spec.current_window
    conn = _table(folder)
    columns = [r[0] for r in conn.execute("DESCRIBE SELECT * EXCLUDE (cur) FROM t").fetchall()]
    assert tuple(columns) == TRANSACTION_COLUMNS
    row = conn.execute(
        "SELECT count(*), count(DISTINCT txn_id), min(ts), max(ts),"
        " count(*) FILTER (status NOT IN ('approved', 'declined', 'error')),"
        " count(*) FILTER ((status = 'approved') <> (decline_code IS NULL)),"
        " count(*) FILTER ((payment_method = 'card') <> (card_network IS NOT NULL)),"
        " count(*) FILTER (amount_minor < 1 OR latency_ms < 1),"
        " avg(CAST(is_retry AS DOUBLE)),"
        " count(*) FILTER (status = 'error' AND NOT cur) / count(*) FILTER (NOT cur)"
        " FROM t"
    ).fetchone()
    assert row is not None
    n, distinct, first, last, bad_status, bad_code, bad_network, bad_numbers, retry, err = row
    assert n == distinct == ROWS
    assert first >= spec.baseline_window.start and last < spec.current_window.end
    assert bad_status == bad_code == bad_network == bad_numbers == 0
    assert 0.01 < retry < 0.06
    assert 0.002 < err < 0.015
    # Rows are written in time order.
    ordered = conn.execute(
        "SELECT bool_and(ts >= prev) FROM (SELECT ts, lag(ts) OVER (ORDER BY rowid) AS prev FROM t)"
    )
    assert ordered.fetchone() == (True,)


def test_baseline_is_realistic(every_kind: dict[str, Path]) -> None:
    conn = _table(every_kind["none"])
    (rate,) = (
        conn.execute("SELECT avg(CAST(status = 'approved' AS DOUBLE)) FROM t").fetchone() or ()
    )
    assert 0.84 < rate < 0.93
    (nsf,) = (
        conn.execute(
            "SELECT avg(CAST(decline_code = '51' AS DOUBLE)) FROM t WHERE status = 'declined'"
        ).fetchone()
        or ()
    )
    assert 0.35 < nsf < 0.6
    us, eu = (
        conn.execute(
            "SELECT avg(CAST(three_ds = 'challenge' AS DOUBLE)) FILTER (issuer_country = 'US'),"
            " avg(CAST(three_ds = 'challenge' AS DOUBLE)) FILTER (issuer_country IN ('GB', 'DE'))"
            " FROM t WHERE payment_method = 'card'"
        ).fetchone()
        or ()
    )
    assert eu > 3 * us
    (median,) = conn.execute("SELECT median(latency_ms) FROM t").fetchone() or ()
    assert 200 < median < 600


@pytest.mark.parametrize(
    "kind",
    [
        "processor_outage",
        "processor_degradation",
        "issuer_outage",
        "network_incident",
        "three_ds_failure",
        "fraud_rule_misfire",
        "benign_shift",
    ],
)
def test_rate_drop_is_on_the_root_cause_only(every_kind: dict[str, Path], kind: str) -> None:
    folder = every_kind[kind]
    spec = _spec(folder)
    assert spec.expected is not None
    conn = _table(folder)
    cond, params = _where(spec.expected.root_cause[0])
    before, after = _rates(conn, cond, params)
    assert before - after > 0.08
    rest_before, rest_after = _rates(conn, f"coalesce(NOT ({cond}), TRUE)", params)
    assert abs(rest_before - rest_after) < 0.025


def test_latency_spike_slows_the_root_cause_only(every_kind: dict[str, Path]) -> None:
    folder = every_kind["latency_spike"]
    spec = _spec(folder)
    assert spec.expected is not None
    conn = _table(folder)
    cond, params = _where(spec.expected.root_cause[0])
    before, after = _p95(conn, cond, params)
    assert after > 2 * before
    rest_before, rest_after = _p95(conn, f"coalesce(NOT ({cond}), TRUE)", params)
    assert rest_after < 1.2 * rest_before


def test_checkout_break_drops_volume_not_rate(every_kind: dict[str, Path]) -> None:
    folder = every_kind["checkout_integration_break"]
    spec = _spec(folder)
    assert spec.expected is not None
    conn = _table(folder)
    root = spec.expected.root_cause[0]
    cond, params = _where(root)
    before, after = _per_minute(conn, spec, cond, params)
    assert after < 0.5 * before
    rest_before, rest_after = _per_minute(conn, spec, f"coalesce(NOT ({cond}), TRUE)", params)
    assert 0.8 < rest_after / rest_before < 1.25
    rate_before, rate_after = _rates(conn, cond, params)
    assert abs(rate_before - rate_after) < 0.06
    (change,) = spec.context.recent_changes
    assert change.kind == "checkout_release" and change.target == root


def test_quiet_scenario_has_no_drop(every_kind: dict[str, Path]) -> None:
    conn = _table(every_kind["none"])
    for dim in ("processor", "issuer_country", "card_network", "merchant_id"):
        rows = conn.execute(
            f"SELECT {ident(dim)}, avg(CAST(status = 'approved' AS DOUBLE)) FILTER (NOT cur)"
            " - avg(CAST(status = 'approved' AS DOUBLE)) FILTER (cur)"
            f" FROM t GROUP BY 1 HAVING count(*) FILTER (cur) >= 300"
        ).fetchall()
        assert rows
        assert all(drop < 0.05 for _, drop in rows), (dim, rows)


def test_fraud_rule_change_lands_just_before_the_window(every_kind: dict[str, Path]) -> None:
    spec = _spec(every_kind["fraud_rule_misfire"])
    assert spec.expected is not None and spec.current_window is not None
    (change,) = spec.context.recent_changes
    assert change.kind == "fraud_rule"
    assert change.target == spec.expected.root_cause[0]
    assert spec.current_window.start.timestamp() - change.ts.timestamp() <= 15 * 60
    assert change.ts < spec.current_window.start


def test_weak_injection_is_labelled_quiet(tmp_path: Path) -> None:
    folder = generate_scenario(
        tmp_path, "processor_degradation", 5, 8000, options=GenerateOptions(severity=0.02)
    )
    spec = _spec(folder)
    assert spec.expected is not None
    assert spec.expected.anomalous is False
    assert spec.expected.incident_kind == "none"
    assert spec.expected.acceptable_actions == ["no_action"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_every_format_holds_the_same_rows(tmp_path: Path, fmt: str) -> None:
    ref = generate_scenario(tmp_path / "ref", "latency_spike", 9, 2500)
    other = generate_scenario(
        tmp_path / fmt, "latency_spike", 9, 2500, options=GenerateOptions(file_format=fmt)
    )
    assert _data_file(other).name == f"transactions.{fmt}"
    query = (
        "SELECT txn_id, epoch(ts), status, coalesce(decline_code, ''), latency_ms,"
        " amount_minor FROM t ORDER BY txn_id"
    )
    assert _table(ref).execute(query).fetchall() == _table(other).execute(query).fetchall()
    assert (ref / "scenario.json").read_text() == (other / "scenario.json").read_text()


def test_short_windows_in_minutes(tmp_path: Path) -> None:
    opts = GenerateOptions(baseline_minutes=40, current_minutes=10)
    folder = generate_scenario(tmp_path, "processor_outage", 4, 6000, options=opts)
    spec = _spec(folder)
    assert spec.baseline_window and spec.current_window
    assert spec.baseline_window.minutes == 40 and spec.current_window.minutes == 10
    conn = _table(folder)
    (n_cur,) = conn.execute("SELECT count(*) FILTER (cur) FROM t").fetchone() or ()
    assert 900 < n_cur < 1500  # a fifth of the rows, give or take the hour-of-day profile
    assert spec.expected is not None and spec.expected.anomalous


def test_trap_fallback_names_the_better_route(tmp_path: Path) -> None:
    folder = generate_scenario(
        tmp_path, "processor_outage", 21, 30_000, options=GenerateOptions(trap_fallback=True)
    )
    spec = _spec(folder)
    assert spec.expected is not None
    root = spec.expected.root_cause[0]
    assert set(root) == {"processor", "issuer_country"}
    best = getattr(spec.expected, "best_route", None)
    assert best and best != root["processor"]
    conn = _table(folder)
    rows = conn.execute(
        "SELECT processor, count(*), avg(CAST(status = 'approved' AS DOUBLE)) FROM t"
        " WHERE NOT cur AND issuer_country = $c AND processor <> $p GROUP BY 1",
        {"c": root["issuer_country"], "p": root["processor"]},
    ).fetchall()
    volume = {p: n for p, n, _ in rows}
    rate = {p: r for p, _, r in rows}
    obvious = max(volume, key=lambda p: volume[p])
    fees = {name: info.fee_bps or 0.0 for name, info in spec.context.processors.items()}
    assert obvious != best
    assert fees[obvious] == min(f for p, f in fees.items() if p != root["processor"])
    assert rate[best] - rate[obvious] > 0.05


def test_two_incidents_are_both_root_causes(tmp_path: Path) -> None:
    opts = GenerateOptions(second_kind="fraud_rule_misfire")
    folder = generate_scenario(tmp_path, "issuer_outage", 8, 20_000, options=opts)
    spec = _spec(folder)
    assert spec.expected is not None
    assert len(spec.expected.root_cause) == 2
    assert spec.expected.incident_kind in ("issuer_outage", "fraud_rule_misfire")
    assert "rollback_config" in spec.expected.acceptable_actions
    assert "enable_retry" in spec.expected.acceptable_actions


def test_extra_dimension_with_non_ascii_and_quotes(tmp_path: Path) -> None:
    values = ["веб", "приложение", "o'brien 店"]
    root = {"channel": "o'brien 店", "issuer_country": "US"}
    opts = GenerateOptions(extra_dimensions={"channel": values}, root_cause=root)
    folder = generate_scenario(tmp_path, "issuer_outage", 6, 20_000, options=opts)
    spec = _spec(folder)
    assert spec.dimensions is not None and spec.dimensions[-1] == "channel"
    assert spec.expected is not None and spec.expected.root_cause == [root]
    conn = _table(folder)
    seen = {r[0] for r in conn.execute("SELECT DISTINCT channel FROM t").fetchall()}
    assert seen == set(values)
    cond, params = _where(root)
    before, after = _rates(conn, cond, params)
    assert before - after > 0.2


def test_decoy_change_targets_something_else(tmp_path: Path) -> None:
    opts = GenerateOptions(decoy_change=True)
    spec = _spec(generate_scenario(tmp_path, "processor_outage", 2, 3000, options=opts))
    (change,) = spec.context.recent_changes
    assert spec.expected is not None
    assert change.target not in spec.expected.root_cause


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown incident kind"):
        generate_scenario(tmp_path, "meteor_strike", 1, 100)
    with pytest.raises(ValueError, match="does not exist"):
        generate_scenario(
            tmp_path,
            "issuer_outage",
            1,
            100,
            options=GenerateOptions(root_cause={"issuer_country": "XX"}),
        )
    with pytest.raises(ValueError):
        GenerateOptions(extra_dimensions={"status": ["a"]})
    assert not list(tmp_path.iterdir())


def test_scenario_json_is_plain_contract_json(every_kind: dict[str, Path]) -> None:
    raw = json.loads((every_kind["three_ds_failure"] / "scenario.json").read_text("utf-8"))
    assert raw["format_version"] == 1
    assert raw["baseline_window"]["start"].endswith("Z")
    assert set(raw["context"]) == {"processors", "recent_actions", "recent_changes"}
    for info in raw["context"]["processors"].values():
        assert 25 <= info["fee_bps"] <= 60 and info["healthy"] is True


def test_generate_all_applies_options_but_names_each_kind(tmp_path: Path) -> None:
    opts = GenerateOptions(file_format="parquet", scenario_id="ignored")
    paths = generate_all(tmp_path, 5, 400, options=opts)
    assert [p.name for p in paths] == [f"{kind}-s5" for kind in INCIDENT_KINDS]
    assert all(_data_file(p).name == "transactions.parquet" for p in paths)


def test_quiet_traffic_keeps_its_mix_across_windows(tmp_path: Path) -> None:
    # Every draw of a row must be independent of its time: a correlated pair of hash
    # streams once made amex attempts thin out in the current window of quiet data.
    conn = _table(generate_scenario(tmp_path, "none", 174, 60_000))
    for dim in ("card_network", "processor", "issuer_country", "payment_method", "three_ds"):
        rows = conn.execute(
            f"SELECT {ident(dim)}, count(*) FILTER (NOT cur), count(*) FILTER (cur) FROM t"
            " GROUP BY 1"
        ).fetchall()
        n_base = sum(r[1] for r in rows)
        n_cur = sum(r[2] for r in rows)
        for value, base, cur in rows:
            share = base / n_base
            if share < 0.03:
                continue
            se = (share * (1 - share) / n_cur) ** 0.5
            assert abs(cur / n_cur - share) < 4.5 * se, (dim, value, share, cur / n_cur)
