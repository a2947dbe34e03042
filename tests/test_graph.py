"""The whole loop, observe -> reason -> guard -> act -> learn, on generated scenarios.

Every incident kind goes through the compiled graph with the default (stub) model; the
records must be contract-valid, honest about anomalies, never execute a forbidden or
low-confidence action, and be reproducible. Guard must sit between reason and act, and a
repeated run must not execute its action twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.context import Context
from agent.graph import build_graph, compile_graph
from agent.runner import RunResult, chat_model, memory_checkpointer, run_scenario, start_run
from tools.config import PayopsConfig
from tools.contract import INCIDENT_KINDS, Expected, RunRecord, ScenarioSpec, Verdict
from tools.generate import GenerateOptions, generate_scenario
from tools.guardrails import GuardConfig
from tools.learning import LEARNING_FILE, LearningStore
from tools.ledger import LEDGER_FILE

SEED = 1
ROWS = 8_000
VERDICTS: frozenset[str] = frozenset(get_args(Verdict))
MIN_EXECUTED_CONFIDENCE = 0.6


# ---------------------------------------------------------------------------------------
# Helpers shared with test_approval.py and test_model_path.py.


class ProposingModel(BaseChatModel):
    """A chat model that answers every request with one fixed tool call, or text, or an error.

    `proposal` is the DecisionProposal it returns; `text` a plain answer with no tool call;
    `error` an exception to raise. The answer never depends on a call count, so a node that
    re-runs gets the same answer.
    """

    model_name: str = "rogue"
    proposal: dict[str, Any] | None = None
    text: str = ""
    error: str | None = None

    @property
    def _llm_type(self) -> str:
        return "test-proposing"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.error is not None:
            raise ValueError(self.error)  # not transient: no retry, straight to fallback
        if self.proposal is None:
            message = AIMessage(content=self.text)
        else:
            call = {"name": "DecisionProposal", "args": self.proposal, "id": "call_test"}
            message = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice)


def run_cycle(
    source: Path,
    state_dir: Path,
    *,
    model: BaseChatModel | str | None = "none",
    config: PayopsConfig | None = None,
) -> RunResult:
    """One cycle in-process with in-memory checkpoints; approvals are left pending.

    `model` is a chat model, or a `--model` spec ("none": the deterministic reasoner).
    """
    llm = chat_model(model) if isinstance(model, str) or model is None else model
    ctx = Context(config=config or PayopsConfig(), model=llm, state_dir=state_dir)
    return start_run(source, ctx, memory_checkpointer())


def ledger_rows(state_dir: Path) -> list[tuple[str, str, str, str]]:
    """(idempotency_key, thread_id, action, status) of every ledger row; [] if no ledger yet."""
    path = state_dir / LEDGER_FILE
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT idempotency_key, thread_id, action, status FROM action_ledger"
        ).fetchall()
    finally:
        conn.close()
    return [(str(k), str(t), str(a), str(s)) for k, t, a, s in rows]


def expected_of(scenario: Path) -> Expected:
    """The ground truth in a scenario folder's scenario.json."""
    spec = ScenarioSpec.model_validate_json((scenario / "scenario.json").read_text("utf-8"))
    assert spec.expected is not None, f"{scenario} has no ground truth"
    return spec.expected


def without_latency(record: RunRecord) -> str:
    """The record's JSON with the one field allowed to differ between runs zeroed."""
    return record.model_copy(update={"latency_ms": 0.0}).model_dump_json()


# ---------------------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small scenario of every incident kind (including `none`), same seed."""
    out = tmp_path_factory.mktemp("scenarios")
    opts = GenerateOptions(file_format="csv")
    return {kind: generate_scenario(out, kind, SEED, ROWS, options=opts) for kind in INCIDENT_KINDS}


@pytest.fixture(scope="module")
def stub_records(
    scenarios: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, RunRecord]:
    """Each scenario through the graph as `payops eval` runs it: default model, own state."""
    state = tmp_path_factory.mktemp("stub-state")
    return {kind: run_scenario(path, state_dir=state / kind) for kind, path in scenarios.items()}


# ---------------------------------------------------------------------------------------
# Every kind, end to end.


@pytest.mark.parametrize("kind", INCIDENT_KINDS)
def test_every_incident_kind_runs_to_a_safe_contract_valid_record(
    kind: str, scenarios: dict[str, Path], stub_records: dict[str, RunRecord]
) -> None:
    record = stub_records[kind]
    truth = expected_of(scenarios[kind])

    assert record.verdict in VERDICTS
    assert record.anomalous == truth.anomalous
    assert record.decision is not None
    assert record.decision.action not in truth.forbidden_actions, (
        f"{kind}: chose forbidden {record.decision.action}"
    )
    if record.verdict == "executed":
        assert record.decision.confidence >= MIN_EXECUTED_CONFIDENCE
        assert record.outcome is not None
    else:
        assert record.outcome is None
    assert record.decision.reasoner == "model:stub"

    # A tool outside the project reads it back unchanged (CONTRACT.md section 3).
    text = record.model_dump_json()
    again = RunRecord.model_validate(json.loads(text))
    assert again == record
    assert again.model_dump_json() == text


def test_no_model_means_the_deterministic_reasoner(
    scenarios: dict[str, Path], stub_records: dict[str, RunRecord], tmp_path: Path
) -> None:
    path = scenarios["processor_outage"]
    record = run_scenario(path, model="none", state_dir=tmp_path)
    assert record.decision is not None and stub_records["processor_outage"].decision is not None
    assert record.decision.reasoner == "deterministic"
    # The stub chooses the deterministic reasoner's top candidate: the same remedy.
    assert record.decision.action == stub_records["processor_outage"].decision.action
    assert record.decision.params == stub_records["processor_outage"].decision.params


# ---------------------------------------------------------------------------------------
# The shape of the graph: nothing reaches act without passing guard.


def test_act_is_reachable_only_through_guard() -> None:
    edges = compile_graph(None).get_graph().edges
    into: dict[str, set[str]] = {}
    for edge in edges:
        into.setdefault(edge.target, set()).add(edge.source)

    assert into["act"] == {"guard", "approve"}
    assert into["approve"] == {"guard"}
    assert into["guard"] == {"reason"}
    # The builder Studio loads has the same wiring.
    builder = build_graph()
    assert not any(target in ("act", "approve") for _, target in builder.edges)
    branch_ends = {
        source: set(spec.ends or {})
        for source, branches in builder.branches.items()
        for spec in branches.values()
    }
    assert branch_ends == {"guard": {"act", "approve", "learn"}, "approve": {"act", "learn"}}


# ---------------------------------------------------------------------------------------
# Determinism.


def test_same_scenario_gives_the_same_record(scenarios: dict[str, Path], tmp_path: Path) -> None:
    path = scenarios["processor_outage"]
    first = run_scenario(path, state_dir=tmp_path / "a")
    second = run_scenario(path, state_dir=tmp_path / "b")
    assert first.verdict == "executed" and first.outcome is not None  # the simulator ran
    assert without_latency(first) == without_latency(second)


# ---------------------------------------------------------------------------------------
# Guard blocks end to end.


@pytest.fixture(scope="module")
def degradation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processor degradation whose remedy is a traffic shift (seed chosen for it)."""
    out = tmp_path_factory.mktemp("degradation")
    return generate_scenario(
        out, "processor_degradation", 3, ROWS, options=GenerateOptions(file_format="csv")
    )


def test_kill_switch_blocks_a_routing_change_end_to_end(degradation: Path, tmp_path: Path) -> None:
    baseline = run_cycle(degradation, tmp_path / "baseline")
    shift = baseline.record.decision
    assert shift is not None and shift.action == "shift_traffic", "scenario lost its shift"
    assert baseline.record.verdict == "executed"
    proposal = {
        "action": shift.action,
        "params": shift.params,
        "confidence": 0.99,
        "rationale": "move traffic off the degraded processor",
    }
    killed = PayopsConfig(guard=GuardConfig(kill_switch=True))

    # A model insisting on the shift while the kill switch is engaged is blocked by guard.
    state = tmp_path / "killed"
    result = run_cycle(degradation, state, model=ProposingModel(proposal=proposal), config=killed)
    record = result.record
    assert record.decision is not None
    assert record.decision.action == "shift_traffic"
    assert record.decision.reasoner == "model:rogue"  # the model's answer reached guard
    assert record.verdict == "blocked"
    assert "kill_switch" in {v.rule for v in record.violations}
    assert record.outcome is None
    assert not any(status == "executed" for *_, status in ledger_rows(state))

    # The same proposal without the kill switch executes: the switch is what stopped it.
    free = run_cycle(degradation, tmp_path / "free", model=ProposingModel(proposal=proposal))
    assert free.record.verdict == "executed"

    # The deterministic reasoner does not propose what the switch forbids; it pages on-call.
    paged = run_cycle(degradation, tmp_path / "paged", config=killed)
    assert paged.record.decision is not None
    assert paged.record.decision.action == "notify_oncall"
    assert paged.record.verdict == "executed"


# ---------------------------------------------------------------------------------------
# Learning, and exactly-once across repeated runs.


def test_runs_are_learned_and_a_repeated_run_is_held_back_by_the_ledger(
    scenarios: dict[str, Path], tmp_path: Path
) -> None:
    outage = run_cycle(scenarios["processor_outage"], tmp_path)
    issuer = run_cycle(scenarios["issuer_outage"], tmp_path)
    assert outage.record.verdict == "executed" and issuer.record.verdict == "executed"
    with LearningStore(tmp_path / LEARNING_FILE) as store:
        stats = store.stats("action")
    assert sum(s.count for s in stats) == 2
    assert sum(s.executed for s in stats) == 2
    assert outage.record.decision is not None and issuer.record.decision is not None
    actions = {s.action for s in stats}
    assert actions == {outage.record.decision.action, issuer.record.decision.action}

    # The same run again, seconds later: guard counts the ledger, so the segment is cooling
    # down and nothing is executed (before, it reported "executed" once more).
    again = run_cycle(scenarios["processor_outage"], tmp_path)
    assert again.record.decision == outage.record.decision
    assert again.record.verdict == "blocked"
    assert again.record.outcome is None
    cooldown = [v for v in again.record.violations if v.rule == "segment_cooldown"]
    assert len(cooldown) == 1 and outage.thread_id in cooldown[0].detail
    key = outage.state.idempotency_key
    assert [row for row in ledger_rows(tmp_path) if row[0] == key] == [
        (key, outage.thread_id, outage.record.decision.action, "executed")
    ]
    with LearningStore(tmp_path / LEARNING_FILE) as store:
        stats = store.stats("action")
    assert sum(s.count for s in stats) == 3 and sum(s.executed for s in stats) == 2


def test_a_change_inside_the_current_window_goes_to_a_human(tmp_path: Path) -> None:
    """A rule change that went live after the window began cannot be ordered against the
    anomaly at this resolution: the rollback waits for a human instead of being blocked."""
    from agent.runner import run_scenario
    from tools.generate import generate_scenario

    folder = generate_scenario(tmp_path, "fraud_rule_misfire", 4, 8_000)
    spec = json.loads((folder / "scenario.json").read_text(encoding="utf-8"))
    start = spec["current_window"]["start"].replace("Z", "+00:00")
    moved = (datetime.fromisoformat(start) + timedelta(minutes=2)).isoformat()
    for change in spec["context"]["recent_changes"]:
        change["ts"] = moved
    (folder / "scenario.json").write_text(json.dumps(spec), encoding="utf-8")
    record = run_scenario(folder, state_dir=tmp_path / "state")
    assert record.decision is not None and record.decision.action == "rollback_config"
    assert record.verdict == "needs_approval"
    assert record.violations == []
