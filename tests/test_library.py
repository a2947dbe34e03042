"""The committed evaluation library and demo are complete, small, and what their builders make."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from agent.demo import build as demo
from evals import build_library, hand_cases
from tools.contract import INCIDENT_KINDS, ScenarioSpec
from tools.generate import generate_scenario

LIBRARY = build_library.LIBRARY


def _specs() -> dict[str, ScenarioSpec]:
    return {
        p.parent.name: ScenarioSpec.model_validate_json(p.read_bytes())
        for p in sorted(LIBRARY.glob("*/scenario.json"))
    }


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def test_library_covers_every_kind_with_ground_truth() -> None:
    specs = _specs()
    assert len(specs) >= 64
    assert set(specs) == {c.id for c in build_library.plan()} | {
        p.name for p in LIBRARY.glob(f"{build_library.HAND_PREFIX}*")
    }
    kinds: dict[str, int] = {}
    for folder, spec in specs.items():
        assert spec.id == folder
        assert spec.expected is not None, folder
        assert len(list((LIBRARY / folder).glob("transactions.*"))) == 1
        kinds[spec.expected.incident_kind] = kinds.get(spec.expected.incident_kind, 0) + 1
    assert set(kinds) == set(INCIDENT_KINDS)
    assert min(kinds.values()) >= 4


def test_library_holds_the_hard_cases() -> None:
    specs = list(_specs().values())
    expected = [s.expected for s in specs if s.expected is not None]
    assert sum(len(e.root_cause) == 2 for e in expected) >= 3
    assert sum(getattr(e, "best_route", None) is not None for e in expected) >= 2
    assert any(len(seg) == 2 for e in expected for seg in e.root_cause)
    short = [s for s in specs if s.current_window and s.current_window.minutes <= 15]
    assert len(short) >= 3
    extra_dims = [s for s in specs if s.dimensions and len(s.dimensions) > 6]
    assert len(extra_dims) >= 2
    non_ascii_roots = [
        s
        for s in extra_dims
        if s.expected
        and any(not v.isascii() for seg in s.expected.root_cause for v in seg.values())
    ]
    assert len(non_ascii_roots) >= 2
    decoys = [
        s
        for s in specs
        if s.expected
        and s.expected.anomalous
        and any(c.target not in s.expected.root_cause for c in s.context.recent_changes)
    ]
    assert len(decoys) >= 3
    weak = [s for s in specs if s.id.startswith("hard-weak") and s.expected]
    assert weak and all(not s.expected.anomalous for s in weak if s.expected)


def test_library_stays_small() -> None:
    size = sum(p.stat().st_size for p in LIBRARY.rglob("*") if p.is_file())
    assert size < 25 * 1024 * 1024


@pytest.mark.parametrize(
    "case_id",
    ["processor_outage-05k-s100", "hard-trap-outage-s350", "hard-extra-checkout-storefront-s371"],
)
def test_library_scenarios_are_what_the_plan_builds(tmp_path: Path, case_id: str) -> None:
    (case,) = [c for c in build_library.plan() if c.id == case_id]
    fresh = generate_scenario(
        tmp_path, case.kind, case.seed, case.rows, options=case.generate_options()
    )
    assert _same_files(fresh, LIBRARY / case_id)


def test_hand_cases_rebuild_byte_for_byte(tmp_path: Path) -> None:
    for fresh in hand_cases.build(tmp_path):
        assert fresh.name.startswith(build_library.HAND_PREFIX)
        assert _same_files(fresh, LIBRARY / fresh.name)


def test_demo_is_small_and_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    committed = [p.parent for p in demo.DEMO_DIR.glob("*/scenario.json")]
    assert [p.name for p in committed] == [demo.DEMO_ID]
    fresh = demo.build(tmp_path)
    assert _same_files(fresh, committed[0])
    spec = ScenarioSpec.model_validate_json((fresh / "scenario.json").read_bytes())
    assert spec.expected is not None
    assert spec.expected.incident_kind == "processor_degradation"
    (root,) = spec.expected.root_cause
    assert set(root) == {"processor", "issuer_country"}
    assert "shift_traffic" in spec.expected.acceptable_actions
    assert getattr(spec.expected, "best_route", root["processor"]) != root["processor"]
