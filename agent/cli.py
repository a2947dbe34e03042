"""The `payops` command line: run, approve/reject, observe, generate, eval and learn.

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
from rich.markup import escape
from rich.table import Table

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
SeedOption = Annotated[int, typer.Option("--seed", help="seed of the simulator")]
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


# Errors a user can act on, by module: a command can only raise those of modules it has
# imported, so `user_errors` looks them up instead of importing the agent (LangGraph and
# LangChain take most of a second) into commands such as `observe` that never use it.
_USER_ERRORS = (
    ("agent.models", "ModelConfigError"),
    ("agent.runner", "RunError"),
    ("tools.config", "ConfigError"),
)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every error a user can act on into one line on stderr and exit code 2."""
    from tools.data import DataError

    try:
        yield
    except DataError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(2) from None
    except Exception as exc:
        loaded = tuple(
            getattr(sys.modules[module], name)
            for module, name in _USER_ERRORS
            if module in sys.modules
        )
        if not isinstance(exc, (UserError, ValueError, *loaded)):
            raise
        err.print(f"[red]error:[/red] {escape(str(exc))}")
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


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _segment(seg: dict[str, str]) -> str:
    from tools.contract import format_segment

    return escape(format_segment(seg))


def render_observation(obs: Observation, source: str) -> None:
    """What observe found, as a person reads it."""
    out.rule(f"[bold]observe[/bold] {escape(source)}")
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
            escape(codes),
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
    from tools.contract import Decision, Outcome
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
        params = escape(json.dumps(decision.params, ensure_ascii=False))
        out.print(
            f"decision: [bold]{decision.action}[/bold] {params} "
            f"confidence {decision.confidence:.2f}, risk {decision.risk}, by {decision.reasoner}"
        )
        out.print(f"rationale: {escape(decision.rationale)}", markup=True)
    elif node == "guard":
        out.rule("[bold]guard[/bold]")
        verdict = GuardVerdict.model_validate(update["guard"])
        colour = {"approved": "green", "needs_approval": "yellow", "blocked": "red"}[verdict.status]
        out.print(f"verdict: [{colour}]{verdict.status}[/{colour}] (risk {verdict.risk})")
        for v in verdict.violations:
            out.print(f"  [red]✗[/red] {v.rule}: {escape(v.detail)}")
        for r in verdict.reasons_for_approval:
            out.print(f"  [yellow]![/yellow] {escape(r)}")
    elif node == "approve":
        from agent.state import Approval

        approval = Approval.model_validate(update["approval"])
        out.rule("[bold]approval[/bold]")
        word = "approved" if approval.approved else "rejected"
        out.print(
            f"{word} by {escape(approval.by)}: {escape(approval.reason or 'no reason given')}"
        )
    elif node == "act":
        out.rule("[bold]act[/bold] (simulated)")
        outcome = Outcome.model_validate(update["outcome"]) if update.get("outcome") else None
        if update.get("already_executed"):
            out.print(
                "[yellow]already executed[/yellow] under idempotency key "
                f"{update.get('idempotency_key', '')[:16]}…: not executed again"
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
            s.incident_kind or "*",
            s.action or "*",
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
            f"{d.action} {escape(json.dumps(d.params, ensure_ascii=False))} needs a human "
            f"(risk {result.pending.risk}): {escape('; '.join(result.pending.reasons))}"
        )
        out.print(f"thread id: [bold]{result.thread_id}[/bold]")
        out.print(f"approve: payops approve {result.thread_id}")
        out.print(f"reject:  payops reject {result.thread_id} --reason '...'")
        return
    _render_learning(ctx)
    out.print(f"[dim]thread {result.thread_id}, {result.record.latency_ms:.0f} ms[/dim]")


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
    seed: SeedOption = 0,
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
                seed=seed,
                lenient=lenient,
                dimensions=_dimensions(dimensions),
                on_update=on_update,
            )
        _finish(result, as_json, ctx)


def _resume(
    thread: str, approved: bool, reason: str, by: str, as_json: bool, model: str | None
) -> None:
    with user_errors():
        from agent.runner import resume_run, sqlite_checkpointer
        from agent.state import Approval

        ctx = _context(model, None, None)
        on_update = None if as_json else (lambda n, u: _render_update(n, u, thread))
        with sqlite_checkpointer(ctx.state_dir) as saver:
            result = resume_run(
                thread,
                Approval(approved=approved, by=by, reason=reason),
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
        from tools.config import state_home
        from tools.data import load
        from tools.observe import observe as run_observe
        from tools.scan_cache import ScanCache

        cfg = _config(config, depth)
        base, cur = _windows(baseline, current)
        cache = ScanCache(state_home() / "cache")
        ds = load(
            data,
            lenient=lenient,
            dimensions=_dimensions(dimensions),
            baseline=base,
            current=cur,
            cache=cache,
        )
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

        if rows < 100:
            raise UserError("--rows must be at least 100")
        if fmt not in ("csv.gz", "csv", "parquet", "jsonl"):
            raise UserError("--format must be csv.gz, csv, parquet or jsonl")
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
            out.print(str(p))


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
    seed: SeedOption = 0,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--compare", help="compare two results files A.jsonl B.jsonl"),
    ] = None,
) -> None:
    """Score decisions on recorded scenarios."""
    with user_errors():
        from agent.eval_cli import run_eval

        run_eval(paths or [], model or [], out_file, report, jobs, seed, compare, out)


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

        if fmt not in ("json", "csv"):
            raise UserError("--format must be json or csv")
        ctx = Context(config=_config(None, None))
        fmt_lit: Literal["json", "csv"] = "json" if fmt == "json" else "csv"
        with ctx.learning_store() as store:
            n = store.export(path, fmt_lit)
        out.print(f"wrote {n} outcomes to {path}")


def main() -> None:
    """Console-script entry point."""
    app()
