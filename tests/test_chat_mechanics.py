"""How the chat graph runs: parallel tool calls, result budgets, step limits, deadlines,
refused repeats, the figures check, the uncompiled graph, and the CLI across processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import StateGraph

from agent.chat import build_chat_graph
from agent.chat.budget import MIN_BUDGET, TRUNCATED_KEY, fit
from agent.chat.context import ChatContext
from agent.chat.figures import check_figures
from agent.chat.session import ChatError, ChatSession
from agent.runner import memory_checkpointer
from tests.chat_helpers import ScriptedModel, session
from tests.test_approval import payops
from tests.test_graph import ledger_rows
from tools.generate import GenerateOptions, generate_scenario


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenarios")
    options = GenerateOptions(file_format="csv")
    return generate_scenario(out, "processor_outage", 5, 8_000, options=options)


INVESTIGATION: list[tuple[str, dict[str, Any]]] = [
    ("find_anomalies", {}),
    ("drill_down", {"segment": {}, "dimension": "processor"}),
    ("decline_codes", {"segment": {"card_network": "visa"}}),
    ("timeline", {"segment": {"payment_method": "card"}}),
    ("compare_windows", {"segment": {"issuer_country": "US"}}),
    ("mix_vs_rate", {"segment": {}}),
    ("latency", {"segment": {"processor": "acq_a"}}),
    ("segment_metrics", {"segment": {"currency": "USD"}, "window": "last 30m"}),
]


def _results(turn: Any) -> dict[str, Any]:
    return {c.name: c.data for c in turn.tool_calls}


def test_parallel_tool_calls_give_the_results_of_sequential_ones(
    outage: Path, tmp_path: Path
) -> None:
    # One model message with every call: ToolNode runs them in parallel threads, on
    # fixed temporary-table names, against one dataset.
    together = session(outage, tmp_path / "a", ScriptedModel(script=[INVESTIGATION, "ok"]))
    parallel = _results(together.ask("everything at once"))
    alone: dict[str, Any] = {}
    for call in INVESTIGATION:
        one = session(outage, tmp_path / "b", ScriptedModel(script=[[call], "ok"]))
        alone.update(_results(one.ask("one thing")))
    assert parallel == alone
    assert all(parallel[name] is not None for name, _ in INVESTIGATION)


def test_a_result_over_budget_is_cut_with_a_marker_and_the_person_sees_it_whole(
    outage: Path, tmp_path: Path
) -> None:
    model = ScriptedModel(
        script=[[("drill_down", {"segment": {}, "dimension": "merchant_id"})], "ok"]
    )
    chat = session(outage, tmp_path, model)
    chat.ctx.tool_budget_chars = 1500
    call = chat.ask("merchants").tool_calls[0]
    assert len(call.content or "") <= 1500
    seen = json.loads(call.content or "{}")
    assert seen[TRUNCATED_KEY]["omitted_items"]["children"] > 0
    assert "narrow the query" in seen[TRUNCATED_KEY]["hint"]
    assert len(call.data["children"]) > len(seen["children"])  # the artifact is whole


def test_fit_keeps_small_results_and_always_fits() -> None:
    small = {"a": [1, 2, 3]}
    assert json.loads(fit(small, 100)) == small
    big = {"rows": [{"value": f"m_{i}", "rate": i / 1000} for i in range(500)], "note": "x"}
    for budget in (MIN_BUDGET, 300, 5000):
        text = fit(big, budget)
        assert len(text) <= budget
        assert TRUNCATED_KEY in json.loads(text)


def test_the_step_limit_ends_a_turn_that_never_answers(outage: Path, tmp_path: Path) -> None:
    script = [[("segment_metrics", {"segment": {}, "window": f"last {m}m"})] for m in range(1, 40)]
    chat = session(outage, tmp_path, ScriptedModel(script=script))
    chat.ctx.max_steps = 4
    turn = chat.ask("loop forever")
    assert turn.stopped == "step_limit"
    assert len(turn.tool_calls) == 4
    assert "step limit" in (turn.answer or "")


def test_an_identical_call_is_refused_within_a_turn(outage: Path, tmp_path: Path) -> None:
    call = ("compare_windows", {"segment": {"processor": "acq_a"}})
    chat = session(outage, tmp_path, ScriptedModel(script=[[call], [call], "ok"]))
    turn = chat.ask("twice")
    first, second = turn.tool_calls
    assert first.data["segment"] == {"processor": "acq_a"}
    assert "refused" in json.loads(second.content or "{}")


def test_a_slow_model_is_cut_off_at_the_deadline(outage: Path, tmp_path: Path) -> None:
    chat = session(outage, tmp_path, ScriptedModel(script=["late"], delay_s=1.5))
    chat.ctx.model_deadline_s = 0.2
    turn = chat.ask("anything")
    assert turn.stopped == "deadline"
    assert "did not answer" in (turn.answer or "")
    assert ledger_rows(tmp_path) == []


def test_a_model_without_tools_or_that_fails_ends_the_turn_plainly(
    outage: Path, tmp_path: Path
) -> None:
    class NoTools(ScriptedModel):
        def bind_tools(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    turn = session(outage, tmp_path, NoTools(script=["hi"])).ask("what is wrong?")
    assert turn.stopped == "model_error" and "cannot call tools" in (turn.answer or "")

    class Broken(ScriptedModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("provider exploded")

    turn = session(outage, tmp_path, Broken(script=["hi"])).ask("what is wrong?")
    assert turn.stopped == "model_error" and "RuntimeError" in (turn.answer or "")


def test_an_invented_figure_is_marked_unverified(outage: Path, tmp_path: Path) -> None:
    call = ("compare_windows", {"segment": {"processor": "acq_a"}})
    chat = session(outage, tmp_path, ScriptedModel(script=[[call], "acq_a fell to 12.3% at 14:07"]))
    turn = chat.ask("how is acq_a?")
    assert turn.unverified == ["14:07", "12.3%"]


def test_look_alike_names_are_refused_not_guessed(outage: Path, tmp_path: Path) -> None:
    cyrillic = "\u0430cq_a"  # "аcq_a": a Cyrillic a
    calls = [
        ("compare_windows", {"segment": {"processor": cyrillic}}),
        ("compare_windows", {"segment": {"PROCESSOR": "ACQ_A"}}),
        ("simulate", {"action": "shift_traffic", "params": {
            "segment": {"processor": "acq_b"}, "from_processor": "acq_b",
            "to_processor": cyrillic, "percent": 20}}),
    ]  # fmt: skip
    turn = session(outage, tmp_path, ScriptedModel(script=[calls, "ok"])).ask("look-alikes")
    look_alike, spelled, simulated = turn.tool_calls
    assert look_alike.error and "no processor" in (look_alike.content or "")
    assert spelled.data["segment"] == {"processor": "acq_a"}  # same name, other case
    assert simulated.error and "no processor" in (simulated.content or "")


def test_check_figures_accepts_what_a_tool_returned_in_any_printing() -> None:
    results = [json.dumps({"rate": 0.912345, "attempts": 3412, "lost": 123.4, "pp": -42.73,
                           "at": "2026-03-01T21:00:00Z", "code": "91"})]  # fmt: skip
    ok = check_figures("91.2% (was 91%), 3,412 attempts, 123 lost, -42.7 pp since 21:00", results)
    assert ok.verified, ok
    assert ok.figures
    bad = check_figures("acq_2 fell 17.5 pp on 3DS at p95 x7, about 2,000 attempts", results)
    assert bad.unverified == ("17.5 pp", "2,000")


def test_the_graph_is_exported_uncompiled_and_runs_without_a_checkpointer(
    outage: Path, tmp_path: Path
) -> None:
    graph = build_chat_graph()
    assert isinstance(graph, StateGraph)
    compiled = graph.compile()
    ctx = ChatContext(state_dir=tmp_path)
    out = compiled.invoke(
        {"messages": [HumanMessage(content="what is wrong?")], "source": str(outage)},
        context=ctx,
    )
    assert "processor_outage" in out["messages"][-1].text


def test_a_thread_is_about_one_dataset(outage: Path, tmp_path: Path) -> None:
    saver = memory_checkpointer()
    chat = ChatSession(ChatContext(state_dir=tmp_path), saver, outage)
    chat.ask("what is wrong?")
    other = Path(__file__).resolve().parent.parent / "evals/scenarios/none-05k-s200"
    with pytest.raises(ChatError, match="is about"):
        ChatSession(ChatContext(state_dir=tmp_path), saver, other, thread_id=chat.thread_id)


# ---------------------------------------------------------------------------------------
# The command line, across processes.


def test_a_thread_continues_in_a_new_process(outage: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = payops(home, "chat", str(outage), "--once", "what is wrong?", "--thread", "t1")
    assert first.returncode == 0, first.stderr
    assert "processor_outage" in first.stdout
    second = payops(
        home, "chat", str(outage), "--once", "which processors are affected?",
        "--thread", "t1", "--json",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    turn = json.loads(second.stdout)
    assert turn["thread_id"] == "t1" and turn["verified"]
    (call,) = turn["tool_calls"]
    assert call["name"] == "drill_down"
    affected = [c for c in call["result"]["children"] if c["affected"]]
    assert call["args"]["segment"] == affected[0]["segment"] == {"processor": affected[0]["value"]}
    assert f"- {affected[0]['value']}:" in turn["answer"]


def test_a_loop_run_is_not_a_conversation(outage: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = payops(home, "run", str(outage), "--json")
    assert run.returncode == 0, run.stderr
    thread = json.loads(run.stdout)["thread_id"]
    chat = payops(home, "chat", str(outage), "--once", "what is wrong?", "--thread", thread)
    assert chat.returncode == 2 and "is a payops run, not a conversation" in chat.stderr


def test_a_chat_proposal_is_approved_from_another_process(outage: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    asked = payops(
        home, "chat", str(outage), "--once", "shift half of it to acq_a", "--thread", "p"
    )
    assert asked.returncode == 0, asked.stderr
    assert "payops approve p" in asked.stdout and ledger_rows(home) == []
    approved = payops(home, "approve", "p", "--by", "carol", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["answer"].startswith("Executed shift_traffic")
    again = payops(home, "approve", "p")
    assert again.returncode == 2 and "no pending approval" in again.stderr
    assert "Traceback" not in again.stderr
    assert len(ledger_rows(home)) == 1


def test_the_repl_reads_questions_and_commands(outage: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = "/help\nwhat is wrong?\n/tools\nshift half of it to acq_a\n/approve\n/thread\n/exit\n"
    done = subprocess.run(
        payops_command(outage), input=script, capture_output=True, text=True,
        env=payops_env(home), cwd=home.parent, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "/approve" in out and "propose_action" in out  # /help and /tools
    assert "processor_outage" in out
    assert "waiting for approval" in out and "Executed shift_traffic" in out
    assert len(ledger_rows(home)) == 1
    assert (home / "chat_history").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = payops(home, "chat", str(tmp_path / "nope.csv"), "--once", "what is wrong?")
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "nope.csv" in missing.stderr
    no_model = payops(home, "chat", str(tmp_path), "--model", "none", "--once", "hi")
    assert no_model.returncode == 2 and "chat needs a model" in no_model.stderr


def payops_command(data: Path) -> list[str]:
    """`payops chat DATA` as a command line."""
    from tests.test_approval import _command

    return _command("chat", str(data))


def payops_env(home: Path) -> dict[str, str]:
    """The environment of a payops process with its state in `home`."""
    from tests.test_approval import _env

    return _env(home)
