"""Evaluating `payops chat` on recorded conversations, without an LLM judge.

A conversation case (`evals/chat/*.json`) names a scenario folder, the questions in order,
and for each answer the facts it must name, the tools it is expected to call and the tools
it must not call. A turn may answer the approval it left pending, or continue in a new
session (a new process, as far as the thread can tell).

Facts are literal text, or references resolved per turn:

- `$root_cause`: every value of the scenario's expected root cause (ground truth);
- `$incident_kind`: the scenario's expected incident kind;
- `$root_cause_rates`: the root cause's success rate before and after, as this turn's
  `find_anomalies` computed it (`91.2%`);
- `$affected_processors`: each processor this turn's `drill_down` marked affected, with
  its current success rate.

Each turn is scored on its tool trajectory (every expected tool called, no forbidden one),
the facts named, and whether every figure in the answer is traceable to a tool result of
the turn. A case also fails when anything was executed without a turn approving it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console, Group, RenderableType
from rich.table import Table

from agent.formats import pct
from tools.contract import ScenarioSpec
from tools.data import SCENARIO_FILE, DataError, read_json_model, read_scenario
from tools.output import write_text_atomic

CASES_DIR = Path(__file__).resolve().parent / "chat"
SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_OUT = Path("chat-eval-results.jsonl")


class TurnCase(BaseModel):
    """One question of a recorded conversation and what its answer must show."""

    model_config = ConfigDict(extra="forbid")
    question: str
    facts: list[str] = Field(default_factory=list)
    tools_expected: list[str] = Field(default_factory=list)
    tools_forbidden: list[str] = Field(default_factory=list)
    approve: bool | None = Field(
        default=None, description="answer the approval this turn leaves pending: yes or no"
    )
    new_session: bool = Field(
        default=False, description="ask in a new session on the same thread (a new process)"
    )


class ChatCase(BaseModel):
    """A recorded conversation about one scenario."""

    model_config = ConfigDict(extra="forbid")
    id: str
    description: str = ""
    scenario: str = Field(description="a scenario folder: a name under evals/scenarios or a path")
    turns: list[TurnCase] = Field(min_length=1)


@dataclass
class TurnScore:
    """How one answer did."""

    case: str
    turn: int
    question: str
    answer: str
    tools: list[str]
    missing_tools: list[str]
    forbidden_tools: list[str]
    facts: list[str]
    missing_facts: list[str]
    unverified: list[str]
    latency_ms: float

    @property
    def trajectory_ok(self) -> bool:
        """Every expected tool called and no forbidden one."""
        return not self.missing_tools and not self.forbidden_tools

    def to_json(self) -> dict[str, Any]:
        """The score as one JSON Lines record."""
        return {
            "case": self.case,
            "turn": self.turn,
            "question": self.question,
            "answer": self.answer,
            "tools": self.tools,
            "trajectory_ok": self.trajectory_ok,
            "missing_tools": self.missing_tools,
            "forbidden_tools": self.forbidden_tools,
            "facts": self.facts,
            "missing_facts": self.missing_facts,
            "unverified_figures": self.unverified,
            "latency_ms": round(self.latency_ms, 1),
        }


@dataclass
class CaseScore:
    """How one conversation did."""

    case: str
    turns: list[TurnScore] = field(default_factory=list)
    unapproved_executions: int = 0
    error: str = ""

    @property
    def passed(self) -> bool:
        """Every turn right, every fact named, every figure traceable, nothing executed
        without approval."""
        return (
            not self.error
            and self.unapproved_executions == 0
            and all(
                t.trajectory_ok and not t.missing_facts and not t.unverified for t in self.turns
            )
        )


def load_case(path: Path) -> ChatCase:
    """A conversation case; DataError names the file and field of a bad one."""
    return read_json_model(path, ChatCase)


def discover_cases(paths: Sequence[Path]) -> list[Path]:
    """Every case file (*.json) under `paths` (default: evals/chat), sorted."""
    found: set[Path] = set()
    for path in paths or [CASES_DIR]:
        if path.is_file():
            found.add(path.resolve())
        elif path.is_dir():
            found.update(p.resolve() for p in path.rglob("*.json"))
        else:
            raise DataError(path, "no such file or directory")
    return sorted(found)


def _scenario_folder(case: ChatCase, case_file: Path) -> Path:
    for base in (case_file.parent, SCENARIOS_DIR):
        folder = (base / case.scenario).resolve()
        if (folder / SCENARIO_FILE).is_file():
            return folder
    raise DataError(case_file, f"field scenario: no scenario folder {case.scenario!r}")


def resolve_facts(facts: Sequence[str], spec: ScenarioSpec, results: dict[str, Any]) -> list[str]:
    """The text each fact stands for in this turn (see the module docstring)."""
    expected = spec.expected
    out: list[str] = []
    for fact in facts:
        if fact == "$root_cause":
            out += [v for seg in (expected.root_cause if expected else []) for v in seg.values()]
        elif fact == "$incident_kind":
            out.append(expected.incident_kind if expected else "none")
        elif fact == "$root_cause_rates":
            roots = expected.root_cause if expected else []
            incidents = (results.get("find_anomalies") or {}).get("incidents") or []
            match = next((i for i in incidents if i["segment"] in roots), None)
            if match is None:
                out.append("(the expected root cause was not found by find_anomalies)")
            else:
                rate = match["success_rate"]
                out += [pct(rate["baseline"]), pct(rate["current"])]
        elif fact == "$affected_processors":
            drill = results.get("drill_down:processor") or {}
            affected = [c for c in drill.get("children", []) if c["affected"]]
            if not affected:
                out.append("(drill_down along processor found no affected processor)")
            for child in affected:
                out += [child["value"], pct(child["success_rate"]["current"])]
        else:
            out.append(fact)
    return list(dict.fromkeys(out))


def _results_by_tool(turn: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for call in turn.tool_calls:
        if isinstance(call.data, dict):
            found[call.name] = call.data
            if call.name == "drill_down":
                found[f"drill_down:{call.data.get('dimension')}"] = call.data
    return found


def run_case(case_file: Path, model: str | None = None) -> CaseScore:
    """Play one recorded conversation in a fresh state folder and score every turn."""
    from agent.chat.command import chat_context
    from agent.chat.session import ChatSession
    from agent.context import ActionPorts
    from agent.runner import memory_checkpointer
    from agent.state import Approval
    from tools.config import PayopsConfig

    case = load_case(case_file)
    score = CaseScore(case.id)
    folder = _scenario_folder(case, case_file)
    spec = read_scenario(folder / SCENARIO_FILE)
    saver = memory_checkpointer()
    approved_turns = 0
    with tempfile.TemporaryDirectory(prefix="payops-chat-eval-") as home:
        ctx = replace(chat_context(model, PayopsConfig()), ports=ActionPorts(Path(home)))
        session = ChatSession(ctx, saver, folder, thread_id=f"eval-{case.id}")
        try:
            for number, turn_case in enumerate(case.turns, 1):
                if turn_case.new_session:
                    ctx = replace(
                        chat_context(model, PayopsConfig()), ports=ActionPorts(Path(home))
                    )
                    session = ChatSession(ctx, saver, folder, thread_id=session.thread_id)
                turn = session.ask(turn_case.question)
                tools = turn.tools_used
                if turn_case.approve is not None and turn.pending is not None:
                    approved_turns += turn_case.approve
                    turn = session.answer(Approval(approved=turn_case.approve, by="eval"))
                    tools = tools + [t for t in turn.tools_used if t not in tools]
                answer = turn.answer or ""
                facts = resolve_facts(turn_case.facts, spec, _results_by_tool(turn))
                score.turns.append(
                    TurnScore(
                        case=case.id,
                        turn=number,
                        question=turn_case.question,
                        answer=answer,
                        tools=tools,
                        missing_tools=[t for t in turn_case.tools_expected if t not in tools],
                        forbidden_tools=[t for t in turn_case.tools_forbidden if t in tools],
                        facts=facts,
                        missing_facts=[f for f in facts if f.lower() not in answer.lower()],
                        unverified=list(turn.unverified),
                        latency_ms=turn.latency_ms,
                    )
                )
        except (DataError, ValueError) as exc:
            score.error = str(exc)
        finally:
            ctx.close()
        with ctx.action_history() as ledger:
            executed = len([e for e in ledger.recent(1000) if e.status == "executed"])
        score.unapproved_executions = max(0, executed - approved_turns)
    return score


def render_chat_summary(scores: Sequence[CaseScore]) -> RenderableType:
    """Per-case results and the totals, as rich tables."""
    turns = [t for s in scores for t in s.turns]
    facts = sum(len(t.facts) for t in turns)
    named = facts - sum(len(t.missing_facts) for t in turns)
    head = Table(title=f"payops eval --chat: {len(scores)} conversations, {len(turns)} turns")
    head.add_column("metric")
    head.add_column("value", justify="right")
    n = max(len(turns), 1)
    head.add_row("conversations passed", f"{sum(s.passed for s in scores)}/{len(scores)}")
    head.add_row("tool trajectory right", f"{sum(t.trajectory_ok for t in turns) / n:.3f}")
    head.add_row("facts named", f"{named / facts:.3f}" if facts else "–")
    head.add_row("answers fully traceable", f"{sum(not t.unverified for t in turns) / n:.3f}")
    head.add_row("executed without approval", str(sum(s.unapproved_executions for s in scores)))
    cases = Table(title="per conversation")
    for col in ("case", "turns", "passed", "what went wrong"):
        cases.add_column(col)
    for s in scores:
        wrong = [s.error] if s.error else []
        for t in s.turns:
            if t.missing_tools or t.forbidden_tools:
                wrong.append(f"turn {t.turn} tools: -{t.missing_tools} +{t.forbidden_tools}")
            if t.missing_facts:
                wrong.append(f"turn {t.turn} missing: {', '.join(t.missing_facts)}")
            if t.unverified:
                wrong.append(f"turn {t.turn} unverified: {', '.join(t.unverified)}")
        if s.unapproved_executions:
            wrong.append(f"{s.unapproved_executions} executed without approval")
        cases.add_row(s.case, str(len(s.turns)), "yes" if s.passed else "NO", "; ".join(wrong))
    return Group(head, cases)


def run_chat_eval(
    paths: Sequence[Path], model: str | None, out_file: Path | None, console: Console
) -> list[CaseScore]:
    """`payops eval --chat`: play every case, print the summary, write one record per turn."""
    files = discover_cases(paths)
    if not files:
        raise DataError(paths[0] if paths else CASES_DIR, "no conversation case (*.json)")
    scores = [run_case(f, model) for f in files]
    out = out_file or DEFAULT_OUT
    lines = [json.dumps(t.to_json(), ensure_ascii=False) for s in scores for t in s.turns]
    write_text_atomic(out, "\n".join(lines) + "\n")
    console.print(render_chat_summary(scores))
    console.print(f"records: {out}")
    return scores
