"""observe on generated scenarios: every incident kind is detected and localized exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.config import ObserveConfig
from tools.contract import INCIDENT_KINDS
from tools.data import load
from tools.generate import generate_scenario
from tools.observe import observe

SEEDS = (11, 12, 13)
KINDS = [k for k in INCIDENT_KINDS if k != "none"]


def _key(segments: list[dict[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted(s.items())) for s in segments)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", KINDS)
def test_incident_is_detected_and_localized(kind: str, seed: int, tmp_path: Path) -> None:
    folder = generate_scenario(tmp_path, kind, seed, 20_000)
    ds = load(folder)
    assert ds.scenario is not None and ds.scenario.expected is not None
    expected = ds.scenario.expected
    result = observe(ds, ObserveConfig())
    assert result.anomalous == expected.anomalous
    assert _key(result.root_cause) == _key(expected.root_cause)


@pytest.mark.parametrize("seed", (*SEEDS, 14, 15))
def test_quiet_data_raises_nothing(seed: int, tmp_path: Path) -> None:
    ds = load(generate_scenario(tmp_path, "none", seed, 20_000))
    result = observe(ds, ObserveConfig())
    assert not result.anomalous
    assert result.anomalies == [] and result.root_cause == []
