"""The `payops` command line: run, approve/reject, chat, observe, generate, eval and learn.

Heavy modules (LangGraph, DuckDB) are imported inside the commands that need them, so
`payops --help` is instant and `payops run` pays only for what it uses. Every error a user
can fix is printed as one line naming the file, line and field, with a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from tools.text import printable

if TYPE_CHECKING:
    from agent.context import Context
    from agent.runner import RunResult
    from tools.contract import TimeWindow
    from tools.observe import Observation

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="payops: observe authorization rates, reason about incidents, guard, act, learn.",
)
learn_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The learning store.")
app.add_typer(learn_app, name="learn")

# A pipe or a log gets 120 columns instead of rich's 80, so tables stay readable.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line

DEMO_DIR = Path(__file__).resolve().parent / "demo"

ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="'stub' (default, offline), 'none', or provider:model"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the JSON record only")]
LenientOption = Annotated[
    bool, typer.Option("--lenient", help="quarantine bad rows instead of failing")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="payops.toml (limits can only be tightened)")
]
WindowOption = Annotated[str | None, typer.Option(help="START/END in ISO-8601 (UTC)")]
DimensionsOption = Annotated[
    str | None, typer.Option("--dimensions", help="comma-separated segment dimensions")
]
DepthOption = Annotated[
    int | None, typer.Option("--depth", help="max dimensions in a segment (1-3)")
]


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every error a user can act on into one line on stderr and exit code 2."""
    from agent.models import ModelConfigError
    from agent.runner import RunError
    from tools.config import ConfigError
    from tools.data import DataError
    from tools.sql import SchemaError, StoreBusyError

    try:
        yield
    except DataError as exc:
        err.print(f"[red]error:[/red] {printable(exc.message)}")
        raise typer.Exit(2) from None
    except (
        ConfigError,
        ModelConfigError,
        RunError,
        SchemaError,
        StoreBusyError,
        UserError,
        ValueError,
    ) as exc:
        err.print(f"[red]error:[/red] {printable(str(exc))}")
        raise typer.Exit(2) from None
    except OSError as exc:  # a write that failed after the checks (disk full, permissions)
        err.print(f"[red]error:[/red] {printable(str(exc))}")
        raise typer.Exit(2) from None


def _demo_scenario() -> Path:
    found = sorted(p.parent for p in DEMO_DIR.glob("*/scenario.json"))
    if not found:
        raise UserError(f"no bundled demo scenario under {DEMO_DIR}")
    return found[0]


def _windows(baseline: str | None, current: str | None) -> tuple[TimeWindow | None, ...]:
    from tools.observe import parse_window

    return (
        parse_window(baseline, "--baseline") if baseline else None,
        parse_window(current, "--current") if current else None,
    )


def _config(path: Path | None, depth: int | None) -> Any:
    from tools.config import load_config

    cfg = load_config(path)
    if depth is not None:
        if not 1 <= depth <= 3:
            raise UserError("--depth must be 1, 2 or 3")
        cfg.observe = cfg.observe.model_copy(update={"depth": depth})
    return cfg


def _dimensions(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [d.strip() for d in text.split(",") if d.strip()]


# ---------------------------------------------------------------------------------------
# Rendering
#
# Everything printed that payops did not write itself (data values, paths, model text,
# the user's own arguments) goes through `printable`: control characters and terminal
# escapes are shown as `\x1b`, never sent to the terminal, and rich markup is escaped.




def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _segment(seg: dict[str, str]) -> str:
    from tools.contract import format_segment

    return printable(format_segment(seg))


def render_observation(obs: Observation, source: str) -> None:
    """What observe found, as a person reads it."""
    out.rule(f"[bold]observe[/bold] {printable(source)}")
    overall = obs.overall
    attempts = f"{overall.current.attempts:,} attempts" if overall else ""
    out.print(
        f"baseline {obs.baseline.start:%Y-%m-%d %H:%M}–{obs.baseline.end:%H:%M} UTC, "
        f"current {obs.current.start:%Y-%m-%d %H:%M}–{obs.current.end:%H:%M} UTC "
        f"({attempts}; {obs.tests:,} segment tests)"
    )
    if not obs.anomalous:
        out.print("[green]No anomaly[/green]: no segment changed significantly.")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("segment", "metric", "baseline", "current", "p-value", "severity", "codes moved"):
        table.add_column(col)
    for a in obs.anomalies[:8]:
        if a.metric == "success_rate":
            before, now = _pct(a.baseline), _pct(a.current)
        elif a.metric == "volume":
            before, now = f"{a.baseline:,.0f}", f"{a.current:,.0f}"
        else:
            before, now = f"{a.baseline:,.0f} ms", f"{a.current:,.0f} ms"
        codes = ", ".join(
            f"{c.code} +{(c.current_share - c.baseline_share) * 100:.1f}pp"
            for c in a.decline_codes[:3]
        )
        colour = {"critical": "red", "warning": "yellow", "info": "cyan"}[a.severity]
        table.add_row(
            _segment(a.segment),
            a.metric,
            before,
            now,
            f"{a.p_value:.1e}",
            f"[{colour}]{a.severity}[/{colour}]",
            printable(codes),
        )
    out.print(table)
    if len(obs.anomalies) > 8:
        out.print(f"… and {len(obs.anomalies) - 8} more anomalous segments")
    for rc in obs.root_causes:
        out.print(
            f"[bold]root cause[/bold]: {_segment(rc.segment)} ({rc.metric}, explains "
            f"{rc.explained_share:.0%} of the change)"
        )


def _render_update(node: str, update: dict[str, Any], source: str) -> None:
    from agent.model_reasoner import IncidentHypothesis
    from tools.contract import Decision, Outcome, Violation
    from tools.guardrails import GuardVerdict
    from tools.observe import Observation

    if node == "observe":
        render_observation(Observation.model_validate(update["observation"]), source)
    elif node == "reason":
        out.rule("[bold]reason[/bold]")
        for h in update.get("hypotheses", [])[:3]:
            hyp = IncidentHypothesis.model_validate(h)
            out.print(f"hypothesis: [bold]{hyp.incident_kind}[/bold] ({hyp.confidence:.2f})")
        decision = Decision.model_validate(update["decision"])
        params = printable(json.dumps(decision.params, ensure_ascii=False))
        out.print(
            f"decision: [bold]{decision.action}[/bold] {params} "
            f"confidence {decision.confidence:.2f}, risk {decision.risk}, by {decision.reasoner}"
        )
        out.print(f"rationale: {printable(decision.rationale)}", markup=True)
    elif node == "guard":
        out.rule("[bold]guard[/bold]")
        verdict = GuardVerdict.model_validate(update["guard"])
        colour = {"approved": "green", "needs_approval": "yellow", "blocked": "red"}[verdict.status]
        out.print(f"verdict: [{colour}]{verdict.status}[/{colour}] (risk {verdict.risk})")
        for v in verdict.violations:
            out.print(f"  [red]✗[/red] {v.rule}: {printable(v.detail)}")
        for r in verdict.reasons_for_approval:
            out.print(f"  [yellow]![/yellow] {printable(r)}")
    elif node == "approve":
        from agent.state import Approval

        approval = Approval.model_validate(update["approval"])
        out.rule("[bold]approval[/bold]")
        word = "approved" if approval.approved else "rejected"
        out.print(
            f"{word} by {printable(approval.by)}: {printable(approval.reason or 'no reason given')}"
        )
    elif node == "act":
        out.rule("[bold]act[/bold] (simulated)")
        if update.get("verdict") == "blocked":
            # Guard runs again when the action is claimed (e.g. after a human's approval).
            out.print("[red]blocked[/red]: guard refused it at the moment of acting")
            for v in update.get("violations", []):
                violation = Violation.model_validate(v)
                out.print(f"  [red]✗[/red] {violation.rule}: {printable(violation.detail)}")
        outcome = Outcome.model_validate(update["outcome"]) if update.get("outcome") else None
        if update.get("already_executed"):
            out.print(
                "[yellow]already executed[/yellow] under idempotency key "
                f"{printable(str(update.get('idempotency_key', ''))[:16])}…: not executed again"
            )
        if outcome is not None:
            lo, hi = outcome.interval or (outcome.after, outcome.after)
            out.print(
                f"{outcome.metric}: {_pct(outcome.before)} -> {_pct(outcome.after)} "
                f"({outcome.improvement * 100:+.1f} pp; 90% interval {_pct(lo)}–{_pct(hi)})"
            )
    elif node == "learn":
        out.rule("[bold]learn[/bold]")
        out.print(f"verdict: [bold]{update.get('verdict')}[/bold], recorded in the learning store")


def _render_learning(ctx: Context) -> None:
    with ctx.learning_store() as store:
        stats = store.stats("action")
    _stats_table(stats, "learning statistics by action")


def _stats_table(stats: list[Any], title: str) -> None:
    table = Table(title=title, box=None, header_style="bold")
    for col in (
        "kind",
        "action",
        "count",
        "executed",
        "success rate",
        "mean impr.",
        "best",
        "worst",
    ):
        table.add_column(col)

    def f(x: float | None, pct: bool = True) -> str:
        if x is None:
            return "–"
        return f"{x * 100:+.1f}pp" if pct else f"{x:.0%}"

    for s in stats:
        table.add_row(
            printable(s.incident_kind or "*"),
            printable(s.action or "*"),
            str(s.count),
            str(s.executed),
            f(s.success_rate, pct=False),
            f(s.mean_improvement),
            f(s.best),
            f(s.worst),
        )
    out.print(table)


def _finish(result: RunResult, as_json: bool, ctx: Context) -> None:
    if as_json:
        # The thread id (an extension of the record) is what `payops approve` needs.
        record = result.record.model_dump(mode="json")
        record["thread_id"] = result.thread_id
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if result.pending is not None:
        out.rule("[bold yellow]waiting for approval[/bold yellow]")
        d = result.pending.decision
        out.print(
            f"{d.action} {printable(json.dumps(d.params, ensure_ascii=False))} needs a human "
            f"(risk {result.pending.risk}): {printable('; '.join(result.pending.reasons))}"
        )
        thread = printable(result.thread_id)
        out.print(f"thread id: [bold]{thread}[/bold]")
        out.print(f"approve: payops approve {thread}")
        out.print(f"reject:  payops reject {thread} --reason '...'")
        return
    _render_learning(ctx)
    out.print(f"[dim]thread {printable(result.thread_id)}, {result.record.latency_ms:.0f} ms[/dim]")


def _context(model: str | None, config: Path | None, depth: int | None) -> Context:
    from agent.context import Context
    from agent.runner import chat_model

    ctx = Context(config=_config(config, depth), model=chat_model(model))
    return ctx


# ---------------------------------------------------------------------------------------
# Commands


@app.command()
def run(
    data: Annotated[
        Path | None, typer.Argument(help="transactions file or scenario folder (default: demo)")
    ] = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
    lenient: LenientOption = False,
    baseline: WindowOption = None,
    current: WindowOption = None,
    dimensions: DimensionsOption = None,
    depth: DepthOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the agent loop once: observe -> reason -> guard -> act -> learn."""
    with user_errors():
        from agent.runner import sqlite_checkpointer, start_run

        source = data or _demo_scenario()
        ctx = _context(model, config, depth)
        ctx.baseline, ctx.current = _windows(baseline, current)
        on_update: Callable[[str, dict[str, Any]], None] | None = None
        if not as_json:

            def on_update(node: str, update: dict[str, Any]) -> None:
                _render_update(node, update, str(source))

        with sqlite_checkpointer(ctx.state_dir) as saver:
            result = start_run(
                source,
                ctx,
                saver,
                lenient=lenient,
                dimensions=_dimensions(dimensions),
                on_update=on_update,
            )
        _finish(result, as_json, ctx)


def _resume(
    thread: str, approved: bool, reason: str, by: str, as_json: bool, model: str | None
) -> None:
    with user_errors():
        from agent.chat.command import answer_thread, chat_context
        from agent.chat.session import is_chat_thread
        from agent.runner import resume_run, sqlite_checkpointer
        from agent.state import Approval

        ctx = _context(model, None, None)
        on_update = None if as_json else (lambda n, u: _render_update(n, u, thread))
        approval = Approval(approved=approved, by=by, reason=reason)
        with sqlite_checkpointer(ctx.state_dir) as saver:
            if is_chat_thread(saver, thread):
                chat = chat_context(model, ctx.config)
                answer_thread(saver, chat, out, thread, approval, as_json=as_json)
                return
            result = resume_run(
                thread,
                approval,
                ctx,
                saver,
                on_update=on_update,
            )
        _finish(result, as_json, ctx)


@app.command()
def approve(
    thread: Annotated[str, typer.Argument(help="thread id printed by `payops run`")],
    by: Annotated[str, typer.Option(help="who approves")] = "operator",
    reason: Annotated[str, typer.Option(help="why")] = "",
    as_json: JsonOption = False,
) -> None:
    """Approve a pending action; the loop resumes and executes it exactly once."""
    _resume(thread, True, reason, by, as_json, None)


@app.command()
def reject(
    thread: Annotated[str, typer.Argument(help="thread id printed by `payops run`")],
    reason: Annotated[str, typer.Option(help="why the action is refused")],
    by: Annotated[str, typer.Option(help="who rejects")] = "operator",
    as_json: JsonOption = False,
) -> None:
    """Reject a pending action; the refusal is recorded and nothing is executed."""
    _resume(thread, False, reason, by, as_json, None)


@app.command()
def chat(
    data: Annotated[Path, typer.Argument(help="transactions file or scenario folder")],
    model: ModelOption = None,
    thread: Annotated[
        str | None, typer.Option("--thread", help="continue this conversation (any process)")
    ] = None,
    once: Annotated[
        str | None, typer.Option("--once", help="answer this one question and exit")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print each turn's messages and tool calls as JSON")
    ] = False,
    by: Annotated[str, typer.Option(help="who approves proposals in this session")] = "operator",
    lenient: LenientOption = False,
    baseline: WindowOption = None,
    current: WindowOption = None,
    dimensions: DimensionsOption = None,
    depth: DepthOption = None,
    config: ConfigOption = None,
) -> None:
    """Investigate in conversation: ask what is wrong, where, since when, what if."""
    with user_errors():
        from agent.chat.command import chat_context, run_chat
        from agent.runner import sqlite_checkpointer

        ctx = chat_context(model, _config(config, depth))
        base, cur = _windows(baseline, current)
        with sqlite_checkpointer(ctx.state_dir) as saver:
            run_chat(
                data,
                saver,
                ctx,
                out,
                thread=thread,
                once=once,
                as_json=as_json,
                lenient=lenient,
                dimensions=_dimensions(dimensions),
                baseline=base,
                current=cur,
                by=by,
            )


@app.command()
def observe(
    data: Annotated[Path, typer.Argument(help="transactions file or scenario folder")],
    baseline: WindowOption = None,
    current: WindowOption = None,
    as_json: JsonOption = False,
    lenient: LenientOption = False,
    dimensions: DimensionsOption = None,
    depth: DepthOption = None,
    config: ConfigOption = None,
) -> None:
    """Find anomalous segments and their root cause (no reasoning, no action)."""
    with user_errors():
        from tools.data import load
        from tools.observe import observe as run_observe

        cfg = _config(config, depth)
        base, cur = _windows(baseline, current)
        ds = load(data, lenient=lenient, dimensions=_dimensions(dimensions))
        if ds.quarantined:
            err.print(
                f"[yellow]quarantined {ds.quarantined} bad rows[/yellow] to {ds.quarantine_path}"
            )
        result = run_observe(ds, cfg.observe, baseline=base, current=cur)
        if as_json:
            sys.stdout.write(json.dumps(result.record(), ensure_ascii=False) + "\n")
        else:
            render_observation(result, str(data))


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="folder to write scenarios in")],
    kind: Annotated[str | None, typer.Option(help="incident kind to inject")] = None,
    seed: Annotated[int, typer.Option(help="seed: same seed, same data")] = 0,
    rows: Annotated[int, typer.Option(help="transactions per scenario")] = 20_000,
    all_kinds: Annotated[bool, typer.Option("--all", help="one scenario of every kind")] = False,
    fmt: Annotated[str, typer.Option("--format", help="csv.gz, csv, parquet or jsonl")] = "csv.gz",
) -> None:
    """Write recorded scenario folders with synthetic transactions and ground truth."""
    with user_errors():
        from tools.contract import INCIDENT_KINDS
        from tools.generate import GenerateOptions, generate_all, generate_scenario
        from tools.output import check_output_dir

        if rows < 100:
            raise UserError("--rows must be at least 100")
        if fmt not in ("csv.gz", "csv", "parquet", "jsonl"):
            raise UserError("--format must be csv.gz, csv, parquet or jsonl")
        check_output_dir(out_dir, "OUT")
        options = GenerateOptions(file_format=fmt)
        if all_kinds:
            paths = generate_all(out_dir, seed, rows, options=options)
        else:
            if kind is None or kind not in INCIDENT_KINDS:
                raise UserError(f"--kind must be one of {', '.join(INCIDENT_KINDS)} (or use --all)")
            paths = [
                generate_scenario(
                    out_dir, kind, seed, rows, options=GenerateOptions(file_format=fmt)
                )
            ]
        for p in paths:
            out.print(printable(str(p)))


@app.command("eval")
def evaluate(
    paths: Annotated[list[Path] | None, typer.Argument(help="scenario folders or parents")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="model spec; give two to compare them"),
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="results JSONL")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write a report here")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help="parallel workers")] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--compare", help="compare two results files A.jsonl B.jsonl"),
    ] = None,
    chat: Annotated[
        bool, typer.Option("--chat", help="score recorded conversations (default: evals/chat)")
    ] = False,
) -> None:
    """Score decisions on recorded scenarios, or chat answers on recorded conversations."""
    with user_errors():
        if chat:
            from evals.chat import run_chat_eval

            if model is not None and len(model) > 1:
                raise UserError("--chat takes one --model")
            scores = run_chat_eval(paths or [], model[0] if model else None, out_file, out)
            if not all(s.passed for s in scores):
                raise typer.Exit(1)
            return
        from agent.eval_cli import run_eval

        run_eval(paths or [], model or [], out_file, report, jobs, compare, out)


@learn_app.command("stats")
def learn_stats(
    by: Annotated[str, typer.Option(help="action, incident_kind or kind_action")] = "kind_action",
    as_json: JsonOption = False,
) -> None:
    """Outcomes so far: success rate, mean improvement, best and worst."""
    with user_errors():
        from dataclasses import asdict

        from agent.context import Context

        if by not in ("action", "incident_kind", "kind_action"):
            raise UserError("--by must be action, incident_kind or kind_action")
        ctx = Context(config=_config(None, None))
        with ctx.learning_store() as store:
            stats = store.stats(by)  # type: ignore[arg-type]
        if as_json:
            sys.stdout.write(json.dumps([asdict(s) for s in stats]) + "\n")
        else:
            _stats_table(stats, f"learning statistics by {by}")


@learn_app.command("export")
def learn_export(
    path: Annotated[Path, typer.Argument(help="file to write")],
    fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
) -> None:
    """Export every recorded outcome (written whole, or not at all)."""
    with user_errors():
        from agent.context import Context
        from tools.output import check_output_file

        if fmt not in ("json", "csv"):
            raise UserError("--format must be json or csv")
        check_output_file(path, "learn export")
        ctx = Context(config=_config(None, None))
        fmt_lit: Literal["json", "csv"] = "json" if fmt == "json" else "csv"
        with ctx.learning_store() as store:
            n = store.export(path, fmt_lit)
        out.print(f"wrote {n} outcomes to {printable(str(path))}")


def main() -> None:
    """Console-script entry point."""
    app()
