"""The incident-kind catalogue: the contract's closed list, and a kind added in one module.

The registry is what users see as CONTRACT.md section 2's list of kinds. A toy kind
(tests/toy_incident_kind.py, written like a module of tools/incidents/) plus one
registration is enough for the generator to inject it, observe and the reasoner to find
it, guard to judge the remedy, and the learning store to record it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import TypeAdapter, ValidationError

from agent.runner import run_scenario
from tests import independent_scenarios, toy_incident_kind
from tests.test_graph import expected_of, run_cycle
from tools.config import PayopsConfig
from tools.contract import ACTION_NAMES, INCIDENT_KINDS, Expected, RunRecord, ScenarioSpec
from tools.generate import GenerateOptions, generate_all, generate_scenario
from tools.guardrails import GuardConfig
from tools.incidents import IncidentKindSpec, registry
from tools.learning import LEARNING_FILE, LearningStore

TOY = toy_incident_kind.KIND

# CONTRACT.md section 2's kinds, in its order, as the independently written generator
# took them from the contract.
CONTRACT_KINDS = tuple(independent_scenarios.KINDS)


def test_the_registry_is_the_contracts_list_of_kinds() -> None:
    assert tuple(INCIDENT_KINDS) == CONTRACT_KINDS
    assert tuple(k.name for k in registry.kinds()) == CONTRACT_KINDS
    assert registry.KIND_MODULES == CONTRACT_KINDS


def test_a_kind_module_must_define_its_spec() -> None:
    with pytest.raises(TypeError, match="must define KIND"):
        registry._load("spec")


@pytest.mark.parametrize("kind", registry.kinds(), ids=lambda k: k.name)
def test_ground_truth_uses_catalogue_actions(kind: IncidentKindSpec) -> None:
    named = {*kind.acceptable, *kind.forbidden, *kind.outside_sca_only}
    assert named <= set(ACTION_NAMES)
    assert not set(kind.acceptable) & set(kind.forbidden)
    assert not set(kind.outside_sca_only) & {*kind.acceptable, *kind.forbidden}


@pytest.mark.parametrize("value", ["procesor_outage", "Processor_Outage", "", 3, None])
def test_an_unknown_kind_is_refused_as_the_closed_list_refuses_it(value: object) -> None:
    # What the contract's Literal of these names (before the registry) said.
    closed: TypeAdapter[str] = TypeAdapter(Literal[CONTRACT_KINDS])  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as literal:
        closed.validate_python(value)
    with pytest.raises(ValidationError) as registered:
        Expected.model_validate({"anomalous": True, "incident_kind": value})
    (want,), (got,) = literal.value.errors(), registered.value.errors()
    assert (got["type"], got["msg"]) == (want["type"], want["msg"])


def test_the_json_schema_lists_the_registered_kinds() -> None:
    schema = ScenarioSpec.model_json_schema()["$defs"]["Expected"]["properties"]["incident_kind"]
    assert schema["enum"] == list(CONTRACT_KINDS)
    with registry.registered(TOY):
        schema = Expected.model_json_schema()["properties"]["incident_kind"]
        assert schema["enum"] == [*CONTRACT_KINDS, TOY.name]


def test_a_registered_kind_validates_until_it_is_removed(tmp_path: Path) -> None:
    truth = {"anomalous": True, "incident_kind": TOY.name}
    with registry.registered(TOY):
        assert Expected.model_validate(truth).incident_kind == TOY.name
        assert TOY.name in INCIDENT_KINDS and INCIDENT_KINDS[-1] == TOY.name
        with pytest.raises(ValueError, match="already registered"):
            registry.register(TOY)
    with pytest.raises(ValidationError):
        Expected.model_validate(truth)
    with pytest.raises(ValueError, match="unknown incident kind 'expired_card_wave'"):
        generate_scenario(tmp_path, TOY.name, 1, 1_000)
    with pytest.raises(ValueError, match="built in"):
        registry.unregister("processor_outage")
    assert tuple(INCIDENT_KINDS) == CONTRACT_KINDS


def test_generate_all_writes_every_registered_kind(tmp_path: Path) -> None:
    with registry.registered(TOY):
        paths = generate_all(tmp_path, 5, 1_000, options=GenerateOptions(file_format="csv"))
    assert [p.name for p in paths] == [f"{k}-s5" for k in (*CONTRACT_KINDS, TOY.name)]


# ---------------------------------------------------------------------------------------
# The toy kind through the whole loop.

SEED = 4
ROWS = 8_000


@pytest.fixture(scope="module")
def toy_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy")
    with registry.registered(TOY):
        return generate_scenario(
            out, TOY.name, SEED, ROWS, options=GenerateOptions(file_format="csv")
        )


def test_a_toy_kind_is_injected_with_its_ground_truth(toy_scenario: Path) -> None:
    with registry.registered(TOY):
        truth = expected_of(toy_scenario)
    assert truth.incident_kind == TOY.name
    assert [set(seg) for seg in truth.root_cause] == [{"issuer_country"}]
    assert truth.acceptable_actions == list(TOY.acceptable)
    assert truth.forbidden_actions == list(TOY.forbidden)


def test_a_toy_kind_runs_through_the_loop_guard_included(
    toy_scenario: Path, tmp_path: Path
) -> None:
    with registry.registered(TOY):
        truth = expected_of(toy_scenario)
        record = run_scenario(toy_scenario, state_dir=tmp_path / "run")
        with LearningStore(tmp_path / "run" / LEARNING_FILE) as store:
            learned = store.stats("incident_kind")
        # Guard judges the toy's remedy like any other: a floor above its confidence blocks it.
        strict = PayopsConfig(guard=GuardConfig(min_confidence=0.95))
        blocked = run_cycle(toy_scenario, tmp_path / "strict", config=strict).record
        assert RunRecord.model_validate_json(record.model_dump_json()) == record

    assert record.incident_kind == TOY.name
    assert record.root_cause == truth.root_cause
    assert record.decision is not None
    # No playbook answers the toy yet: the reasoner pages on-call, an acceptable action.
    assert record.decision.action == "notify_oncall"
    assert record.decision.action in truth.acceptable_actions
    assert record.verdict == "executed" and record.outcome is not None
    assert [s.incident_kind for s in learned] == [TOY.name]

    assert blocked.incident_kind == TOY.name
    assert blocked.verdict == "blocked"
    assert {v.rule for v in blocked.violations} == {"min_confidence"}
