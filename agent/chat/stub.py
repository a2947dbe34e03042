"""The offline chat model: reads a question, picks tools and arguments, answers from results.

`ChatStubModel` is a real LangChain chat model, so the chat graph runs exactly the path a
hosted model takes (tools bound, tool calls, tool messages), offline and deterministically.
Its reply is a pure function of the messages and the tools offered (`respond`):

1. The question is read against the data's vocabulary (`agent.chat.understand`).
2. References are resolved from the thread: the segment under discussion, the last
   incidents found, the last action simulated ("do it", "what about the other processors?").
3. It calls the tools the question needs; when a step needs an earlier result (the root
   cause, the processor losing most), it calls that tool first.
4. It answers from this turn's tool results only, so every figure it states came from a
   tool (the figures check verifies it, as for any model).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.chat.context import Vocabulary
from agent.chat.formats import clock, count, pct, pp
from agent.chat.understand import Parsed, parse
from agent.models import StubChatModel
from tools.contract import INCIDENT_KINDS, Segment, format_segment

DEFAULT_SHIFT_PERCENT = 50.0
DEFAULT_TTL_MINUTES = 60
SHOWN_ROWS = 8

Data = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """A tool call the stub wants to make."""

    name: str
    args: dict[str, Any]


@dataclass
class Memory:
    """What earlier turns of the thread established."""

    incidents: list[Data] = field(default_factory=list)
    focus: Segment | None = None
    last_action: tuple[str, dict[str, Any]] | None = None
    last_dimension: str | None = None


@dataclass(frozen=True)
class Result:
    """One tool result of the current turn."""

    name: str
    args: dict[str, Any]
    data: Data | None  # None when the tool failed or refused
    error: str = ""


# ---------------------------------------------------------------------------------------
# Reading the thread.


def _json(text: str) -> Data | None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _pairs(messages: Sequence[BaseMessage]) -> list[Result]:
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    out: list[Result] = []
    for m in messages:
        if isinstance(m, AIMessage):
            for c in m.tool_calls:
                calls[str(c.get("id"))] = (c["name"], dict(c["args"]))
        elif isinstance(m, ToolMessage):
            name, args = calls.get(m.tool_call_id, (m.name or "", {}))
            data = _json(m.text)
            if m.status == "error" or data is None or "refused" in data:
                out.append(Result(name, args, None, m.text[:300]))
            else:
                out.append(Result(name, args, data))
    return out


def _segment_of(result: Result) -> Segment | None:
    if result.name == "find_anomalies":
        incidents = (result.data or {}).get("incidents") or []
        return dict(incidents[0]["segment"]) if incidents else None
    if result.name == "drill_down":
        return dict(result.args.get("segment") or {})
    if result.name in ("simulate", "propose_action"):
        params = ((result.data or {}).get("decision") or {}).get("params") or {}
        seg = params.get("segment")
        return dict(seg) if isinstance(seg, dict) else None
    seg = (result.data or {}).get("segment")
    return dict(seg) if isinstance(seg, dict) else None


def memory_of(history: Sequence[BaseMessage]) -> Memory:
    """The thread's memory from the messages before the current question."""
    memory = Memory()
    for r in _pairs(history):
        if r.data is None:
            continue
        if r.name == "find_anomalies":
            memory.incidents = list(r.data.get("incidents") or [])
        if r.name == "drill_down":
            memory.last_dimension = str(r.data.get("dimension"))
        if r.name in ("simulate", "propose_action"):
            d = r.data.get("decision") or {}
            memory.last_action = (str(d.get("action")), dict(d.get("params") or {}))
        seg = _segment_of(r)
        if seg is not None:
            memory.focus = seg
    return memory


def split_turn(
    messages: Sequence[BaseMessage],
) -> tuple[list[BaseMessage], HumanMessage | None, list[BaseMessage]]:
    """(history before the question, the question, this turn's messages after it)."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return list(messages[:i]), messages[i], list(messages[i + 1 :])  # type: ignore[return-value]
    return list(messages), None, []


# ---------------------------------------------------------------------------------------
# Formatting: figures exactly as the tools gave them.


def _seg(s: Segment) -> str:
    return format_segment(s)


def _kind_words(kind: str) -> str:
    return kind.replace("_", " ")


def _article(words: str) -> str:
    return "an" if words[:1] in "aeiou" else "a"


def _rate_move(rate: Data) -> str:
    return (
        f"success rate {pct(rate['baseline'])} -> {pct(rate['current'])} ({pp(rate['change_pp'])})"
    )


# ---------------------------------------------------------------------------------------
# Answers, one per tool result shape.


def answer_overview(data: Data) -> str:
    """What is wrong, from find_anomalies."""
    windows = data["windows"]
    if not data.get("anomalous") or not data.get("incidents"):
        overall = data.get("overall") or {}
        text = "No anomaly (incident kind: none): no segment's success rate, volume or latency "
        text += "changed significantly"
        if overall:
            text += f"; all traffic: {_rate_move(overall['success_rate'])}"
        if data.get("anomalous"):
            text = "Anomalies were flagged but none could be localized to a root cause"
        return text + f". Windows: baseline {windows['baseline']}, current {windows['current']}."
    lines = []
    for i, inc in enumerate(data["incidents"]):
        att = inc["attempts"]
        head = "Root cause" if i == 0 else "Also"
        words = _kind_words(inc["incident_kind"])
        line = (
            f"{head}: {_seg(inc['segment'])}, {_article(words)} {words} "
            f"(incident kind {inc['incident_kind']}, confidence {inc['confidence']:.2f}). "
            f"Its {_rate_move(inc['success_rate'])}, on {count(att['current'])} attempts in the "
            f"current window ({count(att['baseline'])} in the baseline)."
        )
        if i == 0:
            excess = inc["excess"]
            line += (
                f" Found on {inc['metric']}: {count(excess['value'])} {excess['of']}, "
                f"{inc['explained_share'] * 100:.0f}% of the change explained."
            )
            err = inc["error_rate"]
            if abs(err["change_pp"]) >= 1:
                line += f" Error rate {pct(err['baseline'])} -> {pct(err['current'])}."
            lat = inc["latency_p95_ms"]
            line += f" p95 latency {count(lat['baseline'])} -> {count(lat['current'])} ms."
            codes = inc.get("codes_moved") or []
            if codes:
                moved = ", ".join(
                    f"{c['code']} ({c['class']}) {pct(c['baseline_share'])} -> "
                    f"{pct(c['current_share'])}"
                    for c in codes[:3]
                )
                line += f" Codes that moved: {moved}."
        lines.append(line)
    lines.append(f"Windows: baseline {windows['baseline']}, current {windows['current']}.")
    lines.append("Ask next: which processors are affected? since when? is it the mix?")
    return "\n".join(lines)


def _child_line(row: Data) -> str:
    rate = row["success_rate"]
    flag = "affected" if row["affected"] else "not affected"
    text = (
        f"- {row['value'] or '(empty)'}: {pct(rate['current'])} (was {pct(rate['baseline'])}), "
        f"{count(row['attempts']['current'])} attempts, "
    )
    lost = row["approvals_lost"]
    text += f"{count(lost)} approvals lost" if lost >= 0.5 else "no approvals lost"
    if row["share_of_lost"] > 0:
        text += f" ({row['share_of_lost'] * 100:.0f}% of the losses)"
    return text + f", {flag}"


def answer_drill(results: list[Data], other: bool, subject: Segment) -> str:
    """Which children carry the failing traffic, from drill_down results."""
    parts = []
    for data in results:
        dim = data["dimension"]
        rows = list(data["children"])
        own = subject.get(dim)
        if other and own is not None:
            rows = [r for r in rows if r["value"] != own]
        where = _seg(data["segment"])
        affected = [r["value"] for r in rows if r["affected"]]
        head = f"{dim} within {where}" + (f", other than {own}" if other and own else "")
        lines = [f"By {head} (current vs baseline success rate, ranked by approvals lost):"]
        lines += [_child_line(r) for r in rows[:SHOWN_ROWS]]
        if len(rows) > SHOWN_ROWS:
            lines.append(f"... and {len(rows) - SHOWN_ROWS} more.")
        if affected:
            lines.append(f"Affected {dim} values: {', '.join(affected)}.")
        else:
            lines.append(f"No {dim} value shows a significant drop.")
        parts.append("\n".join(lines))
    if len(results) == 2:
        parts.append(_which_dimension(results))
    return "\n\n".join(parts)


def _which_dimension(results: list[Data]) -> str:
    """Where the losses concentrate, for "is it the processor or the issuers?"."""
    tops = []
    for data in results:
        children = data["children"]
        top = children[0] if children else None
        share = top["share_of_lost"] if top else 0.0
        tops.append((share, data["dimension"], top))
    tops.sort(key=lambda t: -t[0])
    share, dim, top = tops[0]
    other_share, other_dim, other_top = tops[1]
    if top is None:
        return "Neither dimension shows failing traffic."
    text = f"Along {dim}, {top['value']} carries {share * 100:.0f}% of the approvals lost"
    if other_top is not None:
        text += (
            f"; along {other_dim}, the largest share is {other_top['value']} with "
            f"{other_share * 100:.0f}%"
        )
    if share >= 0.6 and other_share < 0.6:
        return text + f". The failures concentrate in {dim}={top['value']}."
    if share >= 0.6 and other_share >= 0.6 and other_top is not None:
        return text + f". It is both: {dim}={top['value']} and {other_dim}={other_top['value']}."
    return text + ". Neither dimension alone explains the losses."


def answer_metrics(data: Data) -> str:
    """One segment in one window, from segment_metrics."""
    m = data["metrics"]
    return (
        f"{_seg(data['segment'])} in {data['window']}: {count(m['attempts'])} attempts "
        f"({data['attempts_per_minute']:.2f}/min), success rate {pct(m['success_rate'])}, "
        f"error rate {pct(m['error_rate'])}, p50/p95/p99 latency {count(m['latency_p50'])}/"
        f"{count(m['latency_p95'])}/{count(m['latency_p99'])} ms, 3DS challenge rate "
        f"{pct(m['challenge_rate'])}."
    )


def answer_compare(data: Data) -> str:
    """One segment over two windows, from compare_windows."""
    b, c, ch = data["baseline"], data["current"], data["change"]
    apm = ch["attempts_per_minute"]
    return (
        f"{_seg(data['segment'])}: success rate {pct(b['success_rate'])} -> "
        f"{pct(c['success_rate'])} ({pp(ch['success_rate_pp'])}, p-value "
        f"{data['success_rate_drop_p_value']:.2g}), error rate {pct(b['error_rate'])} -> "
        f"{pct(c['error_rate'])}, p95 latency {count(b['latency_p95'])} -> "
        f"{count(c['latency_p95'])} ms, attempts per minute {apm['baseline']:.2f} -> "
        f"{apm['current']:.2f}, {count(data['approvals_lost'])} approvals lost. Windows: "
        f"baseline {data['windows']['baseline']}, current {data['windows']['current']}."
    )


def answer_timeline(data: Data) -> str:
    """Since when, from timeline."""
    where = _seg(data["segment"])
    buckets = data["buckets"]
    minutes = data["bucket_minutes"]
    if not buckets:
        return f"{where} has no attempts in {data['window']}."
    parts = []
    onset = data.get("success_rate_onset")
    if onset:
        parts.append(
            f"{where}'s success rate dropped from {onset['start']} ({clock(onset['start'])} "
            f"UTC): {pct(onset['before'])} before, {pct(onset['after'])} since."
        )
    else:
        low = min(buckets, key=lambda b: b["success_rate"])
        high = max(buckets, key=lambda b: b["success_rate"])
        parts.append(
            f"No lasting drop in {where}'s success rate in {data['window']}: between "
            f"{pct(low['success_rate'])} and {pct(high['success_rate'])} per {minutes}-minute "
            "bucket."
        )
    volume = data.get("volume_onset")
    if volume:
        parts.append(
            f"Its share of all traffic fell from {volume['start']} ({clock(volume['start'])} "
            f"UTC): {pct(volume['share_before'])} before, {pct(volume['share_after'])} since."
        )
    last = buckets[-3:]
    recent = ", ".join(
        f"{clock(b['start'])} {pct(b['success_rate'])} on {count(b['attempts'])}" for b in last
    )
    parts.append(f"Last {minutes}-minute buckets: {recent}.")
    return " ".join(parts)


def answer_codes(data: Data, named: Sequence[str] = ()) -> str:
    """Failure codes, from decline_codes; the codes the question named come first."""
    where = _seg(data["segment"])
    if not data["codes"]:
        return f"{where} has no failures in either window."
    codes = sorted(data["codes"], key=lambda c: c["code"] not in named)
    missing = [c for c in named if c not in {row["code"] for row in codes}]
    lines = [f"Failure codes of {where}, share of attempts baseline -> current:"]
    if missing:
        lines.insert(0, f"{', '.join(missing)}: not among the top failure codes of {where}.")
    for c in codes[:SHOWN_ROWS]:
        lines.append(
            f"- {c['code']} ({c['class']}): {pct(c['baseline_share'])} -> "
            f"{pct(c['current_share'])} ({pp(c['change_pp'])}), {count(c['current_count'])} now"
        )
    rising = [c for c in codes if c["change_pp"] >= 0.5]
    if rising:
        top = max(rising, key=lambda c: c["change_pp"])
        lines.append(f"The largest rise is {top['code']}, a {top['class']} code.")
    return "\n".join(lines)


def answer_latency(data: Data) -> str:
    """Latency, from latency."""
    parts = []
    for q in ("p50", "p95", "p99"):
        v = data[q]
        ratio = f", x{v['ratio']:.2f}" if v.get("ratio") is not None else ""
        parts.append(f"{q} {count(v['baseline_ms'])} -> {count(v['current_ms'])} ms{ratio}")
    return f"{_seg(data['segment'])} latency: " + "; ".join(parts) + "."


def answer_mix(data: Data) -> str:
    """Mix or rates, from mix_vs_rate."""
    where = _seg(data["segment"])
    rate = data["success_rate"]
    rows = data["by_dimension"]
    text = f"{where}: {_rate_move(rate)}."
    if not rows:
        return text + " There is no dimension left to split it along."
    top = rows[0]
    text += (
        f" Traffic mix explains at most {pp(top['mix_pp'])} of it (along {top['dimension']}); "
        f"rates within {top['dimension']} values explain {pp(top['rate_pp'])}."
    )
    if abs(top["mix_pp"]) > abs(top["rate_pp"]):
        moves = ", ".join(f"{m['value']} {pp(m['mix_pp'])}" for m in top["largest_mix_moves"])
        return text + f" It is the mix: {moves}."
    return text + " It is the rates, not the mix."


def answer_changes(data: Data) -> str:
    """Recent changes, from recent_changes."""
    changes = data["changes"]
    if not changes:
        return "No configuration or rule change was recorded with this data."
    lines = ["Changes recorded with the data, newest first:"]
    for c in changes[:SHOWN_ROWS]:
        version = f" {c['version']}" if c.get("version") else ""
        lines.append(
            f"- {c['kind']}{version} on {_seg(c['target'])} at {c['ts']}, "
            f"{c['minutes_before_current_window']:.1f} minutes before the current window"
        )
    return "\n".join(lines)


def answer_actions(data: Data) -> str:
    """Recent actions, from recent_actions."""
    lines = []
    recorded = data["recorded_with_data"]
    if recorded:
        lines.append("Recorded with the data: " + ", ".join(
            f"{a['action']} at {a['ts']}" for a in recorded[:SHOWN_ROWS]
        ) + ".")  # fmt: skip
    executed = data["executed_by_payops"]
    if executed:
        lines.append("Executed by payops, newest first:")
        for e in executed[:SHOWN_ROWS]:
            out = e.get("outcome") or {}
            effect = ""
            if "before" in out and "after" in out:
                effect = f", success rate {pct(out['before'])} -> {pct(out['after'])}"
            lines.append(
                f"- {e['action']} on {e['scenario']} ({e['status']}, {e['claimed_at']}{effect})"
            )
    if not lines:
        return "No action was recorded with the data, and payops has executed none."
    return "\n".join(lines)


def answer_explain(data: Data) -> str:
    """The last loop run, from explain_decision."""
    if not data.get("found"):
        return str(data.get("note", "No loop run was found."))
    d = data.get("decision") or {}
    g = data.get("guard") or {}
    text = (
        f"Run {data['thread']} on {data['scenario']}: incident kind {data['incident_kind']}. "
        f"It decided {d.get('action')} (by {d.get('reasoner')}). "
        f"Rationale: {d.get('rationale') or 'none given'} Guard: {g.get('status')}"
    )
    violations = data.get("violations") or []
    if violations:
        text += "; violations: " + "; ".join(f"{v['rule']}: {v['detail']}" for v in violations)
    return text + f". Verdict: {data.get('verdict')}."


def answer_learning(data: Data) -> str:
    """Learning history, from learning_history."""
    rows = data["rows"]
    if not rows:
        return "The learning store has no outcome for that yet."
    lines = ["Past outcomes (decisions, executed, success rate, mean improvement):"]
    for r in rows[:SHOWN_ROWS]:
        rate = "-" if r["success_rate"] is None else pct(r["success_rate"])
        mean = "-" if r["mean_improvement_pp"] is None else pp(r["mean_improvement_pp"])
        lines.append(
            f"- {r['incident_kind']} / {r['action']}: {r['decisions']}, {r['executed']}, "
            f"{rate}, {mean}"
        )
    return "\n".join(lines)


def _guard_text(guard: Data) -> str:
    if guard["violations"]:
        return "; ".join(f"{v['rule']}: {v['detail']}" for v in guard["violations"])
    return "; ".join(guard["reasons_for_approval"]) or "no rule objects"


def answer_simulate(data: Data) -> str:
    """A dry run, from simulate."""
    d, est, guard = data["decision"], data["estimate"], data["guard"]
    where = _seg(d["params"].get("segment") or {})
    text = (
        f"Dry run of {d['action']} {json.dumps(d['params'], ensure_ascii=False)}: "
        f"success rate of {where} {pct(est['before'])} -> {pct(est['after'])} "
        f"({est['improvement'] * 100:+.1f} pp"
    )
    if est.get("interval"):
        lo, hi = est["interval"]
        text += f"; likely between {pct(lo)} and {pct(hi)}"
    text += f"). {est.get('note', '')}. Guard: {guard['status']} ({_guard_text(guard)})."
    text += " Nothing was executed."
    if guard["status"] != "blocked":
        text += " Say 'do it' to propose it; a person approves it before it runs."
    return text


def answer_proposal(data: Data) -> str:
    """The end of a proposal, from propose_action."""
    d = data["decision"]
    what = f"{d['action']} {json.dumps(d['params'], ensure_ascii=False)}"
    status = data["status"]
    if status == "blocked":
        return f"Guard blocks {what}: {_guard_text(data['guard'])}. Nothing was executed."
    if status == "rejected":
        return f"{what} was rejected by {data['by']}: {data['reason']}. Nothing was executed."
    out = data.get("outcome") or {}
    effect = ""
    if out:
        effect = (
            f": success rate {pct(out['before'])} -> {pct(out['after'])} "
            f"({out['improvement'] * 100:+.1f} pp, simulated)"
        )
    if status == "already_executed":
        return (
            f"{what} was already executed under key {data['idempotency_key']}; "
            f"not executed again{effect}."
        )
    return f"Executed {what} once, approved by {data['approved_by']}{effect}."


HELP = (
    "I answer from the loaded data with payops' tools. Try: 'what is wrong?', 'which "
    "processors are affected?', 'since when?', 'is it the processor or the issuers?', 'is it "
    "the mix?', 'which decline codes moved?', 'latency of acq_a', 'success rate of BR in the "
    "last hour', 'recent changes', 'what did payops do?', 'explain the last decision', "
    "'what worked before?', 'what if we move half of it to acq_b?', 'do it'."
)
REFUSAL = (
    "I can't set the rules aside: every action goes through guard, and anything that "
    "changes traffic waits for a person's approval. Nothing was proposed or executed."
)


# ---------------------------------------------------------------------------------------
# Planning: the next tool calls, or the answer.


@dataclass(frozen=True)
class Turn:
    """The question being answered and everything known while answering it."""

    parsed: Parsed
    memory: Memory
    results: list[Result]
    tools: frozenset[str]

    def of(self, name: str) -> list[Result]:
        """This turn's results of one tool, in order."""
        return [r for r in self.results if r.name == name]

    def errors(self) -> list[Result]:
        """This turn's failed or refused calls."""
        return [r for r in self.results if r.data is None]


Step = list[Call] | str


def _window_args(parsed: Parsed) -> dict[str, str]:
    if len(parsed.windows) >= 2:
        return {"baseline": parsed.windows[0], "current": parsed.windows[1]}
    if parsed.windows and parsed.windows[0] != "baseline":
        return {"current": parsed.windows[0]}
    return {}


def _subject(turn: Turn) -> Segment | str | None:
    """The segment the question is about; "find" when the incident must be found first."""
    if turn.parsed.segment:
        return turn.parsed.segment
    found = turn.of("find_anomalies")
    if found:
        if found[-1].data is None:
            return f"failed: {found[-1].error}"
        incidents = found[-1].data.get("incidents") or []
        return dict(incidents[0]["segment"]) if incidents else None
    if turn.memory.focus is not None:
        return turn.memory.focus
    return "find"


NO_SUBJECT = (
    "No anomaly was found, so there is no affected segment to look into. Name a segment, "
    "for example 'processor acq_a' or 'country BR'."
)


def _with_subject(turn: Turn, build: Any) -> Step:
    subject = _subject(turn)
    if subject == "find":
        return [Call("find_anomalies", {})]
    if isinstance(subject, str):
        return f"The find_anomalies tool {subject}"
    if subject is None:
        return NO_SUBJECT
    result: Step = build(subject)
    return result


def _single(turn: Turn, name: str, args: dict[str, Any], answer: Any) -> Step:
    """Call `name` once with `args`, then answer from its result."""
    done = [r for r in turn.of(name) if r.args == args]
    if not done:
        return [Call(name, args)]
    if done[-1].data is None:
        return f"The {name} tool failed: {done[-1].error}"
    text: str = answer(done[-1].data)
    return text


def _overview(turn: Turn) -> Step:
    if turn.parsed.segment:
        return _compare(turn)
    return _single(turn, "find_anomalies", _window_args(turn.parsed), answer_overview)


def _drill(turn: Turn) -> Step:
    parsed = turn.parsed
    dims = list(parsed.dimensions)
    if not dims:
        dims = [turn.memory.last_dimension or "processor"]

    def build(subject: Segment) -> Step:
        wanted = [{"segment": subject, "dimension": d, **_window_args(parsed)} for d in dims[:2]]
        done = {json.dumps(r.args, sort_keys=True): r for r in turn.of("drill_down")}
        missing = [a for a in wanted if json.dumps(a, sort_keys=True) not in done]
        if missing:
            return [Call("drill_down", a) for a in missing]
        results = [done[json.dumps(a, sort_keys=True)] for a in wanted]
        failed = [r for r in results if r.data is None]
        if failed:
            return f"The drill_down tool failed: {failed[0].error}"
        return answer_drill([r.data for r in results if r.data], parsed.other, subject)

    return _with_subject(turn, build)


def _metrics(turn: Turn) -> Step:
    if not turn.parsed.windows or len(turn.parsed.windows) >= 2:
        return _compare(turn)

    def build(subject: Segment) -> Step:
        args = {"segment": subject, "window": turn.parsed.windows[0]}
        return _single(turn, "segment_metrics", args, answer_metrics)

    return _with_subject(turn, build)


def _compare(turn: Turn) -> Step:
    def build(subject: Segment) -> Step:
        args = {"segment": subject, **_window_args(turn.parsed)}
        return _single(turn, "compare_windows", args, answer_compare)

    return _with_subject(turn, build)


def _timeline(turn: Turn) -> Step:
    def build(subject: Segment) -> Step:
        args: dict[str, Any] = {"segment": subject}
        if turn.parsed.windows:
            args["window"] = turn.parsed.windows[0]
        return _single(turn, "timeline", args, answer_timeline)

    return _with_subject(turn, build)


def _segment_tool(name: str, answer: Any) -> Any:
    def plan(turn: Turn) -> Step:
        def build(subject: Segment) -> Step:
            return _single(turn, name, {"segment": subject, **_window_args(turn.parsed)}, answer)

        return _with_subject(turn, build)

    return plan


def _mix(turn: Turn) -> Step:
    subject = turn.parsed.segment or turn.memory.focus or {}
    args: dict[str, Any] = {"segment": subject, **_window_args(turn.parsed)}
    if turn.parsed.dimensions:
        args["dimension"] = turn.parsed.dimensions[0]
    return _single(turn, "mix_vs_rate", args, answer_mix)


def _explain(turn: Turn) -> Step:
    m = re.search(r"\b((?:run|eval|chat)-[\w-]+)\b", turn.parsed.text)
    args = {"thread": m.group(1)} if m else {}
    return _single(turn, "explain_decision", args, answer_explain)


def _learning(turn: Turn) -> Step:
    args: dict[str, Any] = {}
    lowered = turn.parsed.text.lower().replace(" ", "_")
    kinds = [k for k in INCIDENT_KINDS if k != "none" and k in lowered]
    if kinds:
        args["incident_kind"] = kinds[0]
    if turn.parsed.action:
        args["action"] = turn.parsed.action
    return _single(turn, "learning_history", args, answer_learning)


def _action_params(turn: Turn, action: str, subject: Segment) -> dict[str, Any] | Step:
    """The params of `action` on `subject`, or the tool calls / question that come first."""
    parsed = turn.parsed
    if action in ("shift_traffic", "failover_processor"):
        target = parsed.processor("target")
        if target is None:
            return "Which processor should the traffic go to? Name it, e.g. 'to acq_b'."
        source = parsed.processor("source") or subject.get("processor")
        if source is None:
            # The processor losing most approvals on the segment is the one to move from.
            drills = [r for r in turn.of("drill_down") if r.args.get("dimension") == "processor"]
            if not drills:
                return [Call("drill_down", {"segment": subject, "dimension": "processor"})]
            children = (drills[-1].data or {}).get("children") or []
            losing = [c for c in children if c["value"] != target]
            if not losing:
                return "No processor other than the target carries this traffic."
            source = str(losing[0]["value"])
        params: dict[str, Any] = {
            "segment": subject,
            "from_processor": source,
            "to_processor": target,
        }
        if action == "shift_traffic":
            params["percent"] = parsed.percent or DEFAULT_SHIFT_PERCENT
        else:
            params["ttl_minutes"] = DEFAULT_TTL_MINUTES
        return params
    if action == "enable_retry":
        codes = list(parsed.codes)
        if not codes:
            found = turn.of("decline_codes")
            if not found:
                return [Call("decline_codes", {"segment": subject})]
            rows = (found[-1].data or {}).get("codes") or []
            codes = [c["code"] for c in rows if c["class"] == "technical" and c["change_pp"] > 0]
            if not codes:
                return "No technical failure code rose on this segment: nothing to retry."
        params = {"segment": subject, "decline_codes": codes, "max_attempts": 2}
        backup = parsed.processor("target")
        if backup:
            params["backup_processor"] = backup
        return params
    if action in ("force_3ds", "relax_3ds", "disable_payment_method"):
        return {"segment": subject, "ttl_minutes": DEFAULT_TTL_MINUTES}
    if action in ("rollback_config", "adjust_fraud_rule"):
        found = turn.of("recent_changes")
        if not found:
            return [Call("recent_changes", {"segment": subject})]
        changes = (found[-1].data or {}).get("changes") or []
        if action == "rollback_config":
            if not changes:
                return "No recorded change on this segment to roll back."
            c = changes[0]
            keys = ("ts", "kind", "target", "version")
            return {"change": {k: c[k] for k in keys if c.get(k) is not None}}
        merchant = subject.get("merchant_id")
        if merchant is None:
            return "A fraud rule is adjusted per merchant: name the merchant."
        rule = next((str(c["version"]) for c in changes if c.get("version")), "unknown")
        lowered = parsed.text.lower()
        mode = next((m for m in ("disable", "threshold") if m in lowered), "shadow")
        return {"merchant_id": merchant, "rule": rule, "mode": mode}
    if action == "notify_oncall":
        severity = next(
            (s for s in ("critical", "warning", "info") if s in parsed.text.lower()), "warning"
        )
        return {"severity": severity, "summary": f"from chat: {parsed.text}"[:200]}
    return {}


def _act(turn: Turn, tool: str) -> Step:
    parsed = turn.parsed
    done = turn.of(tool)
    if done:
        if done[-1].data is None:
            return f"The {tool} tool failed: {done[-1].error}"
        return (answer_simulate if tool == "simulate" else answer_proposal)(done[-1].data)
    if parsed.that_action and parsed.action is None:
        if turn.memory.last_action is None:
            return "There is nothing to act on yet: simulate an action first."
        last, params = turn.memory.last_action
        return [Call(tool, _tool_args(tool, last, params, parsed.text))]
    action = parsed.action
    if action is None:
        return HELP

    def build(subject: Segment) -> Step:
        params = _action_params(turn, str(action), subject)
        if not isinstance(params, dict):
            return params
        return [Call(tool, _tool_args(tool, str(action), params, parsed.text))]

    return _with_subject(turn, build)


def _tool_args(tool: str, action: str, params: dict[str, Any], text: str) -> dict[str, Any]:
    args: dict[str, Any] = {"action": action, "params": params}
    if tool == "propose_action":
        args["reason"] = f"asked in chat: {text}"[:200]
    return args


_PLANS: dict[str, Any] = {
    "overview": _overview,
    "drill": _drill,
    "metrics": _metrics,
    "compare": _compare,
    "timeline": _timeline,
    "codes": lambda t: _segment_tool("decline_codes", lambda d: answer_codes(d, t.parsed.codes))(t),
    "latency": _segment_tool("latency", answer_latency),
    "mix": _mix,
    "changes": lambda t: _single(
        t, "recent_changes", {"segment": t.parsed.segment}, answer_changes
    ),
    "actions": lambda t: _single(t, "recent_actions", {}, answer_actions),
    "explain": _explain,
    "learning": _learning,
    "simulate": lambda t: _act(t, "simulate"),
    "propose": lambda t: _act(t, "propose_action"),
}


def respond(messages: Sequence[BaseMessage], vocabulary: Vocabulary, tools: frozenset[str]) -> Step:
    """The stub's next step for a conversation: tool calls, or the answer text."""
    history, question, turn_msgs = split_turn(messages)
    if question is None:
        return HELP
    parsed = parse(question.text, vocabulary)
    if parsed.intent == "refuse":
        return REFUSAL
    if parsed.intent in ("help", "unknown"):
        prefix = "" if parsed.intent == "help" else "I did not understand that question. "
        return prefix + HELP
    turn = Turn(parsed, memory_of(history), _pairs(turn_msgs), tools)
    step: Step = _PLANS[parsed.intent](turn)
    if isinstance(step, list):
        missing = [c.name for c in step if c.name not in tools]
        if missing:
            return f"I would need the {missing[0]} tool, which is not available here."
        asked = {(r.name, json.dumps(r.args, sort_keys=True)) for r in turn.results}
        step = [c for c in step if (c.name, json.dumps(c.args, sort_keys=True)) not in asked]
        if not step:
            return "The tools did not give me what I need to answer that."
    return step


class ChatStubModel(StubChatModel):
    """Deterministic offline chat model for `payops chat` (see the module docstring)."""

    vocabulary: Vocabulary

    @property
    def _llm_type(self) -> str:
        return "payops-chat-stub"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        offered = kwargs.get("tools") or []
        tools = frozenset(str(t.get("function", {}).get("name")) for t in offered)
        step = respond(messages, self.vocabulary, tools)
        if isinstance(step, str):
            message = AIMessage(content=step)
        else:
            # Ids come from the content and the turn number: the same conversation gives
            # the same calls, and no two turns share an id.
            turn = sum(isinstance(m, HumanMessage) for m in messages)
            calls = []
            for i, c in enumerate(step):
                payload = json.dumps([turn, len(messages), i, c.name, c.args], sort_keys=True)
                digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
                calls.append(
                    ToolCall(name=c.name, args=c.args, id=f"call_{digest}", type="tool_call")
                )
            message = AIMessage(content="", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])
