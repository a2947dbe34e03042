"""The whole loop on scenarios from an independently written generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.runner import run_scenario
from tests.independent_scenarios import KINDS, build
from tools.contract import RunRecord
from tools.data import read_scenario


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[RunRecord, Path]]:
    out = tmp_path_factory.mktemp("independent")
    state = tmp_path_factory.mktemp("state")
    runs = []
    for kind in KINDS:
        folder = build(out, kind, seed=3, rows=15_000)
        runs.append((run_scenario(folder, state_dir=state / kind), folder))
    return runs


def _key(segments: list[dict[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted(s.items())) for s in segments)


def test_findings_generalise(results: list[tuple[RunRecord, Path]]) -> None:
    detected = kind_ok = root_ok = 0
    for record, folder in results:
        expected = read_scenario(folder / "scenario.json").expected
        assert expected is not None
        detected += record.anomalous == expected.anomalous
        kind_ok += record.incident_kind == expected.incident_kind
        root_ok += _key(record.root_cause) == _key(expected.root_cause)
    n = len(results)
    assert detected == n
    assert kind_ok / n >= 0.9
    assert root_ok / n >= 0.9


def test_nothing_forbidden_is_executed(results: list[tuple[RunRecord, Path]]) -> None:
    for record, folder in results:
        expected = read_scenario(folder / "scenario.json").expected
        assert expected is not None and record.decision is not None
        if record.verdict == "executed":
            assert record.decision.action not in expected.forbidden_actions
            assert record.decision.confidence >= 0.6
