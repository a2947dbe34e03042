"""The action catalogue: the contract's list, and an action added in one module.

The registry is what users see as CONTRACT.md section 4's catalogue. A toy action
(tests/toy_action.py, written like a module of tools/actions/) plus one registration is
enough for the contract to validate it, the prompts to list it, payops.toml to tighten
its limits, the reasoner to propose it, the simulator to estimate it, guard to judge it
(a toy rule, tests/toy_guard_rule.py, included) and the learning store to record it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import TypeAdapter, ValidationError

from agent.chat.context import ChatContext
from agent.chat.graph import system_prompt as chat_prompt
from agent.model_reasoner import system_prompt as reason_prompt
from tests import toy_action, toy_incident_kind
from tests.test_graph import run_cycle
from tests.toy_guard_rule import card_refresh_batch
from tools import actions, incidents
from tools.actions import ActionLimit, registry
from tools.config import ConfigError, load_config
from tools.contract import ACTION_NAMES, INCIDENT_KINDS, Decision, Expected, ScenarioSpec
from tools.generate import GenerateOptions, generate_scenario
from tools.guardrails import effective_limits, registered_rule
from tools.learning import LEARNING_FILE, LearningStore

TOY = toy_action.ACTION
TOY_KIND = toy_incident_kind.KIND
DEMO = Path(__file__).resolve().parents[1] / "agent" / "demo" / "demo-processor-degradation-us"

# CONTRACT.md section 4 as users read it: each action, its params and its default risk.
CONTRACT_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "no_action": (("reason",), "none"),
    "notify_oncall": (("severity", "summary"), "none"),
    "shift_traffic": (("segment", "from_processor", "to_processor", "percent"), "medium"),
    "failover_processor": (("segment", "from_processor", "to_processor", "ttl_minutes"), "high"),
    "enable_retry": (("segment", "decline_codes", "max_attempts", "backup_processor"), "medium"),
    "force_3ds": (("segment", "ttl_minutes"), "medium"),
    "relax_3ds": (("segment", "ttl_minutes"), "high"),
    "rollback_config": (("change",), "medium"),
    "adjust_fraud_rule": (("merchant_id", "rule", "mode", "value"), "high"),
    "disable_payment_method": (("segment", "ttl_minutes"), "high"),
}

# DOMAIN.md: what a payment engineer reaches for, in order, per incident kind.
PLAYBOOKS: dict[str, tuple[str, ...]] = {
    "none": ("no_action",),
    "processor_outage": ("shift_traffic", "failover_processor", "enable_retry", "notify_oncall"),
    "processor_degradation": ("shift_traffic", "enable_retry", "notify_oncall"),
    "issuer_outage": ("notify_oncall", "enable_retry"),
    "network_incident": ("notify_oncall", "enable_retry"),
    "three_ds_failure": ("notify_oncall", "relax_3ds"),
    "fraud_rule_misfire": ("rollback_config", "adjust_fraud_rule", "notify_oncall"),
    "latency_spike": ("shift_traffic", "enable_retry", "notify_oncall"),
    "checkout_integration_break": ("rollback_config", "notify_oncall"),
    "benign_shift": ("no_action", "notify_oncall"),
}


def _names(specs: tuple[actions.ActionSpec[Any], ...]) -> tuple[str, ...]:
    return tuple(s.name for s in specs)


def test_the_registry_is_the_contracts_catalogue() -> None:
    assert tuple(ACTION_NAMES) == tuple(CONTRACT_ACTIONS)
    assert tuple(CONTRACT_ACTIONS) == registry.ACTION_MODULES
    for spec in actions.actions():
        assert (tuple(spec.params.model_fields), spec.risk) == CONTRACT_ACTIONS[spec.name]


def test_an_action_module_must_define_its_spec() -> None:
    with pytest.raises(TypeError, match="must define ACTION"):
        registry._load("spec")


@pytest.mark.parametrize("value", ["shift_trafic", "Shift_Traffic", "", 3, None])
def test_an_unknown_action_is_refused_as_the_closed_list_refuses_it(value: object) -> None:
    # What the contract's Literal of these names (before the registry) said.
    closed: TypeAdapter[str] = TypeAdapter(Literal[tuple(CONTRACT_ACTIONS)])  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as literal:
        closed.validate_python(value)
    with pytest.raises(ValidationError) as registered:
        Decision.model_validate({"action": value, "confidence": 0.5})
    (want,), (got,) = literal.value.errors(), registered.value.errors()
    assert (got["loc"], got["type"], got["msg"]) == (("action",), want["type"], want["msg"])


def test_the_json_schema_lists_the_registered_actions() -> None:
    defs = ScenarioSpec.model_json_schema()["$defs"]
    assert defs["RecentAction"]["properties"]["action"]["enum"] == list(CONTRACT_ACTIONS)
    with actions.registered(TOY):
        schema = Expected.model_json_schema()["properties"]["acceptable_actions"]
        assert schema["items"]["enum"] == [*CONTRACT_ACTIONS, TOY.name]


def test_a_registered_action_validates_until_it_is_removed() -> None:
    proposal = {"action": TOY.name, "params": {"segment": {}, "ttl_minutes": 30}, "confidence": 1}
    with actions.registered(TOY):
        decision = Decision.model_validate(proposal)
        assert (decision.risk, ACTION_NAMES[-1]) == ("medium", TOY.name)
        with pytest.raises(ValueError, match="already registered"):
            actions.register(TOY)
    with pytest.raises(ValidationError):
        Decision.model_validate(proposal)
    with pytest.raises(ValueError, match="built in"):
        actions.unregister("shift_traffic")
    assert tuple(ACTION_NAMES) == tuple(CONTRACT_ACTIONS)


def test_an_action_cannot_redefine_a_limit_or_bound_a_ttl_it_lacks() -> None:
    three_ds = ActionLimit("max_3ds_ttl_minutes", 480, "ceiling", "looser", integer=True)
    with pytest.raises(ValueError, match="max_3ds_ttl_minutes"):
        actions.register(replace(TOY, name="relax_3ds_longer", ttl=three_ds))
    no_ttl = replace(TOY, name="no_ttl", params=actions.get("notify_oncall").params)
    with pytest.raises(TypeError, match="no ttl_minutes parameter"):
        actions.register(no_ttl)
    assert tuple(ACTION_NAMES) == tuple(CONTRACT_ACTIONS)


@pytest.mark.parametrize("kind", INCIDENT_KINDS, ids=str)
def test_each_kinds_playbook_is_in_the_order_an_engineer_reaches_for(kind: str) -> None:
    assert _names(actions.playbook(kind)) == PLAYBOOKS[kind]


def test_a_new_kind_pages_oncall_without_an_edit_to_any_action() -> None:
    assert _names(actions.playbook(TOY_KIND.name)) == ("notify_oncall",)
    with actions.registered(TOY):
        assert _names(actions.playbook(TOY_KIND.name)) == (TOY.name, "notify_oncall")


def test_the_prompts_list_every_registered_action() -> None:
    ctx = ChatContext()
    inv = ctx.investigation(str(DEMO))
    try:
        with actions.registered(TOY):
            prompts = (reason_prompt(), chat_prompt(inv))
            for prompt in prompts:
                for spec in actions.actions():
                    assert f"| `{spec.name}` |" in prompt
                assert (
                    "| `refresh_card_credentials` | `segment`, `ttl_minutes` (integer > 0) |"
                    in prompt
                )
        assert all(TOY.name not in p for p in (reason_prompt(), chat_prompt(inv)))
    finally:
        ctx.close()
    # The template's own braces come out as written.
    assert '`{"processor": "acq_a", "issuer_country": "BR"}`' in reason_prompt()


def test_payops_toml_tightens_a_registered_actions_limits(tmp_path: Path) -> None:
    path = tmp_path / "payops.toml"
    path.write_text("[guard]\nmax_card_refresh_ttl_minutes = 30\nmax_card_refresh_batch = 9e9\n")
    with actions.registered(TOY):
        limits = effective_limits(load_config(path).guard, {})
        assert (limits.of(toy_action.TTL), limits.of(toy_action.MAX_BATCH)) == (30, 5000)
    # Without the action, its limits are no setting at all.
    with pytest.raises(
        ConfigError, match=r"unknown key .max_card_refresh_ttl_minutes. in \[guard\]"
    ):
        load_config(path)


# ---------------------------------------------------------------------------------------
# The toy action through the whole loop, guard and a toy rule included.

SEED = 4
ROWS = 8_000


@pytest.fixture(scope="module")
def expired_cards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario of the toy incident kind, an expired-card wave in one issuer country."""
    out = tmp_path_factory.mktemp("toy")
    with incidents.registered(TOY_KIND):
        return generate_scenario(
            out, TOY_KIND.name, SEED, ROWS, options=GenerateOptions(file_format="csv")
        )


def test_a_toy_action_runs_through_the_loop_guard_included(
    expired_cards: Path, tmp_path: Path
) -> None:
    with incidents.registered(TOY_KIND), actions.registered(TOY):
        result = run_cycle(expired_cards, tmp_path / "run")
        with LearningStore(tmp_path / "run" / LEARNING_FILE) as store:
            learned = store.stats("kind_action")
    record = result.record
    assert record.incident_kind == TOY_KIND.name
    assert record.decision is not None
    assert (record.decision.action, record.decision.params["ttl_minutes"]) == (TOY.name, 60)
    assert record.verdict == "executed" and record.outcome is not None
    assert record.outcome.improvement > 0  # the toy's estimator ran
    assert [(s.incident_kind, s.action) for s in learned] == [(TOY_KIND.name, TOY.name)]


def test_a_toy_rule_and_a_tightened_toy_limit_send_it_to_a_human(
    expired_cards: Path, tmp_path: Path
) -> None:
    path = tmp_path / "payops.toml"
    path.write_text("[guard]\nmax_card_refresh_batch = 5\nmax_card_refresh_ttl_minutes = 30\n")
    with incidents.registered(TOY_KIND), actions.registered(TOY):
        config = load_config(path)
        with registered_rule(card_refresh_batch):
            paused = run_cycle(expired_cards, tmp_path / "strict", config=config)
        unruled = run_cycle(expired_cards, tmp_path / "unruled", config=config)
    assert paused.record.decision is not None
    # The tightened TTL changed the candidate; the rule asked for a person.
    assert paused.record.decision.params["ttl_minutes"] == 30
    assert paused.record.verdict == "needs_approval" and paused.pending is not None
    (reason,) = paused.pending.reasons
    assert reason.startswith("card_refresh_batch: refreshes ") and "batch of 5" in reason
    assert unruled.record.verdict == "executed"
