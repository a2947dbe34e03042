"""How a chat turn looks in the terminal: tool calls, results as tables, the answer.

Everything printed passes through `safe`: data values and model output may hold terminal
control sequences or rich markup, and neither may reach the terminal as such.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from rich.console import Console
from rich.table import Table

from agent.chat.budget import TRUNCATED_KEY
from agent.chat.formats import clock, count, pct, pp
from agent.chat.session import TurnResult
from agent.state import ApprovalRequest
from tools.contract import NO_VALUE, format_segment
from tools.terminal import Column as TableColumn
from tools.terminal import fitted_table, segment_cell
from tools.text import printable

MAX_TABLE_ROWS = 12
# A model's answer is shown up to this length (the whole one is in --json).
MAX_ANSWER_CHARS = 8000


def safe(text: object) -> str:
    """`text` as rich can print it literally (tools/text.py's `printable`); multi-line
    text (an answer) keeps its line breaks."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            return format_segment(value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _get(row: Any, path: str) -> Any:
    for key in path.split("."):
        row = row.get(key) if isinstance(row, dict) else None
    return row


def _moves(moves: Any) -> str:
    if not isinstance(moves, list):
        return _cell(moves)
    return ", ".join(
        f"{m.get('value') if m.get('value') != '' else NO_VALUE} {pp(m.get('mix_pp'))}"
        for m in moves
    )


Column = tuple[str, str, Callable[[Any], str]]
# Per tool: (the list of records in its result, the columns to show).
_TABLES: dict[str, tuple[str, list[Column]]] = {
    "find_anomalies": (
        "incidents",
        [
            ("root cause", "segment", _cell),
            ("kind", "incident_kind", _cell),
            ("success rate", "success_rate.baseline", pct),
            ("now", "success_rate.current", pct),
            ("change", "success_rate.change_pp", pp),
            ("attempts now", "attempts.current", count),
            ("excess", "excess.value", count),
            ("explains", "explained_share", pct),
        ],
    ),
    "drill_down": (
        "children",
        [
            ("value", "value", _cell),
            ("success rate", "success_rate.baseline", pct),
            ("now", "success_rate.current", pct),
            ("change", "success_rate.change_pp", pp),
            ("attempts now", "attempts.current", count),
            ("approvals lost", "approvals_lost", count),
            ("share of lost", "share_of_lost", pct),
            ("affected", "affected", _cell),
        ],
    ),
    "timeline": (
        "buckets",
        [
            ("from", "start", clock),
            ("attempts", "attempts", count),
            ("success rate", "success_rate", pct),
            ("errors", "errors", count),
            ("share of traffic", "share_of_traffic", pct),
        ],
    ),
    "decline_codes": (
        "codes",
        [
            ("code", "code", _cell),
            ("class", "class", _cell),
            ("baseline share", "baseline_share", pct),
            ("current share", "current_share", pct),
            ("change", "change_pp", pp),
            ("failures now", "current_count", count),
        ],
    ),
    "mix_vs_rate": (
        "by_dimension",
        [
            ("dimension", "dimension", _cell),
            ("from mix", "mix_pp", pp),
            ("from rates", "rate_pp", pp),
            ("largest mix moves", "largest_mix_moves", _moves),
        ],
    ),
    "learning_history": (
        "rows",
        [
            ("kind", "incident_kind", _cell),
            ("action", "action", _cell),
            ("decisions", "decisions", count),
            ("executed", "executed", count),
            ("success rate", "success_rate", pct),
            ("mean improvement", "mean_improvement_pp", pp),
            ("ranking adjustment", "ranking_adjustment_pp", pp),
        ],
    ),
    "recent_changes": (
        "changes",
        [
            ("at", "ts", _cell),
            ("kind", "kind", _cell),
            ("version", "version", _cell),
            ("target", "target", _cell),
            ("minutes before the current window", "minutes_before_current_window", _cell),
        ],
    ),
    "recent_actions": (
        "executed_by_payops",
        [
            ("claimed at", "claimed_at", _cell),
            ("action", "action", _cell),
            ("status", "status", _cell),
            ("success rate", "outcome.before", pct),
            ("after", "outcome.after", pct),
            ("data", "scenario", _cell),
            ("thread", "thread", _cell),
        ],
    ),
}
# Results that are one record: shown as metric / baseline / current rows.
_WINDOW_PAIRS = ("compare_windows",)


# When a result's table is wider than the terminal, these columns go first (highest first).
_DROP = {
    "excess": 3,
    "share of lost": 3,
    "errors": 3,
    "attempts now": 2,
    "failures now": 2,
    "explains": 1,
}


def _table(
    title: str,
    rows: list[dict[str, Any]],
    columns: list[Column],
    width: int,
    *,
    tail: bool = False,
) -> Table:
    if not columns:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        columns = [(k, k, _cell) for k in keys]
    # A timeline's latest buckets matter most; elsewhere rows are ranked, first is first.
    shown = rows[-MAX_TABLE_ROWS:] if tail else rows[:MAX_TABLE_ROWS]
    cells = [
        [
            segment_cell(value) if _is_segment(value := _get(r, path)) else safe(fmt(value))
            for _, path, fmt in columns
        ]
        for r in shown
    ]
    fitted = [
        TableColumn(safe(header), drop=_DROP.get(header, 0), wraps=True)
        for header, _, _ in columns
    ]
    table = fitted_table(width, fitted, cells, title=safe(title))
    if len(rows) > MAX_TABLE_ROWS:
        where = "earlier" if tail else "more"
        table.caption = f"… {len(rows) - MAX_TABLE_ROWS} {where} rows"
    return table


def _is_segment(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _pair_table(name: str, data: dict[str, Any]) -> Table:
    table = Table(
        title=safe(f"{name}: {_cell(data.get('segment', {}))}"),
        title_justify="left",
        box=None,
        header_style="bold",
    )
    for col in ("metric", "baseline", "current"):
        table.add_column(col)
    before, after = data.get("baseline", {}), data.get("current", {})
    for key, value in before.items():
        fmt = pct if key.endswith(("rate", "share")) else count
        table.add_row(safe(key), fmt(value), fmt(after.get(key)))
    return table


def _plain(value: Any) -> bool:
    """A field shown on the summary line: a scalar, or a segment / window pair."""
    if isinstance(value, dict):
        return bool(value) and all(isinstance(v, str) for v in value.values())
    return value is not None and not isinstance(value, list)


def _decision_lines(data: dict[str, Any]) -> list[str]:
    """simulate / propose_action: the decision, the estimate or outcome, guard's verdict."""
    d = data.get("decision") or {}
    lines = [f"{d.get('action')} {json.dumps(d.get('params', {}), ensure_ascii=False)}"]
    effect = data.get("estimate") or data.get("outcome")
    if isinstance(effect, dict) and "before" in effect:
        lo, hi = effect.get("interval") or (effect["after"], effect["after"])
        lines.append(
            f"success rate {pct(effect['before'])} -> {pct(effect['after'])} "
            f"({effect['improvement'] * 100:+.1f} pp, 90% interval {pct(lo)}–{pct(hi)})"
        )
    guard = data.get("guard")
    if isinstance(guard, dict):
        lines.append(f"guard: {guard.get('status')} (risk {guard.get('risk')})")
        lines += [f"  ✗ {v['rule']}: {v['detail']}" for v in guard.get("violations", [])]
        lines += [f"  ! {r}" for r in guard.get("reasons_for_approval", [])]
    if "status" in data:
        lines.append(f"status: {data['status']}")
    return lines


def render_result(console: Console, name: str, data: Any) -> None:
    """A tool's whole result: its records as a table, the other fields as one line."""
    if not isinstance(data, dict):
        return
    if name in ("simulate", "propose_action"):
        for line in _decision_lines(data):
            console.print(f"[dim]{safe(line)}[/dim]")
        return
    shown: set[str] = set()
    if name in _TABLES:
        key, columns = _TABLES[name]
        rows = data.get(key)
        if isinstance(rows, list) and rows:
            title = f"{name}: {_cell(data.get('segment', ''))}"
            width = console.size.width
            console.print(_table(title, rows, columns, width, tail=name == "timeline"))
        shown.add(key)
    elif name in _WINDOW_PAIRS:
        console.print(_pair_table(name, data))
        shown |= {"baseline", "current"}
    lines = [
        f"[dim]{safe(key)}:[/dim] {safe(_cell(value))}"
        for key, value in data.items()
        if key not in shown and key != TRUNCATED_KEY and _plain(value)
    ]
    if lines:
        console.print("  ".join(lines))


def render_call(console: Console, name: str, args: dict[str, Any]) -> None:
    """A tool call as it is made."""
    shown = ", ".join(f"{k}={_cell(v)}" for k, v in args.items())
    console.print(f"[dim]→ {safe(name)}({safe(shown)})[/dim]")


def render_message(console: Console, message: AnyMessage, *, verbose: bool = True) -> None:
    """One message of a turn as it arrives (tool calls and their results)."""
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            render_call(console, call["name"], dict(call["args"]))
    elif isinstance(message, ToolMessage):
        if message.status == "error":
            console.print(f"[red]✗ {safe(message.name)}:[/red] {safe(message.text[:300])}")
        elif verbose:
            render_result(console, message.name or "", message.artifact)
        if TRUNCATED_KEY in message.text:
            console.print(
                f"[yellow]{safe(message.name)}: the model saw a truncated result[/yellow]"
            )


def render_pending(console: Console, pending: ApprovalRequest, thread_id: str) -> None:
    """What waits for a person's approval."""
    d = pending.decision
    console.print(
        f"[bold yellow]waiting for approval[/bold yellow]: {safe(d.action)} "
        f"{safe(json.dumps(d.params, ensure_ascii=False))} (risk {safe(pending.risk)}): "
        f"{safe('; '.join(pending.reasons))}"
    )
    console.print(f"thread id: [bold]{safe(thread_id)}[/bold]")


def render_answer(console: Console, turn: TurnResult) -> None:
    """The answer, marked when a figure in it came from no tool result."""
    if turn.answer is None:
        return
    answer = turn.answer
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[:MAX_ANSWER_CHARS] + f" … (cut at {MAX_ANSWER_CHARS:,} characters)"
    console.print(safe(answer))
    if turn.unverified:
        console.print(
            "[bold yellow]unverified:[/bold yellow] no tool result of this turn contains "
            + safe(", ".join(turn.unverified))
        )
    console.print(f"[dim]{turn.latency_ms:.0f} ms, thread {safe(turn.thread_id)}[/dim]")
