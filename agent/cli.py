"""The agent's commands of the `payops` command line: run, approve/reject, chat, observe,
generate, learn, config. The installed `payops` (evals/cli.py) is these and `eval`: evals
depends on agent, never the reverse, so the top layer puts the two together.

Heavy modules (LangGraph, DuckDB) are imported inside the commands that need them, so
`payops --help` is instant and `payops run` pays only for what it uses. Every error a user
can fix is printed as one line naming the file, line and field, with a non-zero exit.
Output is sized to the terminal (`$COLUMNS`, else its width, else 120 columns).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

from tools.incidents.registry import KIND_MODULES
from tools.terminal import make_console
from tools.text import printable

if TYPE_CHECKING:
    from agent.context import Context
    from agent.runner import RunResult
    from tools.contract import TimeWindow
    from tools.data import Dataset

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
# The agent's commands; evals/cli.py adds them to the `payops` command as they are.
app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings=CONTEXT_SETTINGS)
learn_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
    help="The learning store.",
)
app.add_typer(learn_app, name="learn")

err = Console(stderr=True, highlight=False, soft_wrap=True)  # one error, one line

DEMO_DIR = Path(__file__).resolve().parent / "demo"
# Listed in `generate --kind`'s help; the registry is the source (tools/incidents/).
KIND_HELP = "incident kind to inject: " + ", ".join(KIND_MODULES)

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
    str | None,
    typer.Option(
        "--dimensions",
        help="segment dimensions: +mcc,-currency adjusts the defaults (which include the "
        "file's extra columns); a,b,c replaces them",
    ),
]
DepthOption = Annotated[
    int | None, typer.Option("--depth", help="max dimensions of a root cause (1-3; default 3)")
]
AllOption = Annotated[
    bool, typer.Option("--all", help="list every anomalous segment, not the top 8")
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
    from tools.sql import SchemaError, StoreBusyError

    try:
        yield
    except DataError as exc:
        err.print(f"[red]error:[/red] {printable(exc.message)}")
        raise typer.Exit(2) from None
    except Exception as exc:
        loaded = tuple(
            getattr(sys.modules[module], name)
            for module, name in _USER_ERRORS
            if module in sys.modules
        )
        if isinstance(exc, (SchemaError, StoreBusyError, UserError, ValueError, *loaded)):
            err.print(f"[red]error:[/red] {printable(str(exc))}")
            raise typer.Exit(2) from None
        if not isinstance(exc, OSError):
            raise
        # a write that failed after the checks (disk full, permissions)
        err.print(f"[red]error:[/red] {printable(str(exc))}")
        raise typer.Exit(2) from None


def _demo_scenario() -> Path:
    from tools.data import SCENARIO_FILE

    found = sorted(p.parent for p in DEMO_DIR.glob(f"*/{SCENARIO_FILE}"))
    if not found:
        raise UserError(f"no bundled demo scenario under {DEMO_DIR}")
    return found[0]


def _windows(
    baseline: str | None, current: str | None
) -> tuple[TimeWindow | None, TimeWindow | None]:
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
# What the commands print beyond the steps of a run (agent/render.py).


def _kill_switch(ctx: Context, config: Path | None) -> str | None:
    """What engaged the kill switch (None when it is off)."""
    from tools.config import find_config
    from tools.guardrails.limits import KILL_SWITCH_ENV, kill_switch_from_env

    if not ctx.limits.kill_switch:
        return None
    if kill_switch_from_env():
        return f"{KILL_SWITCH_ENV}=1"
    return f"guard.kill_switch in {find_config(config).describe()}"


def _state(ctx: Context) -> str:
    """The state directory in use and why, for the last line of a command."""
    from tools.config import find_state_dir

    found = find_state_dir()
    if found.path.absolute() == ctx.state_dir.absolute():
        return found.describe()
    return str(ctx.state_dir)


def _quarantined(ds: Dataset) -> None:
    if ds.quarantined:
        err.print(
            f"[yellow]quarantined {ds.quarantined:,} bad rows[/yellow] to "
            f"{printable(str(ds.quarantine_path))} (--lenient)"
        )


def _finish(result: RunResult, as_json: bool, ctx: Context, out: Console) -> None:
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
            f"(risk {result.pending.risk}):"
        )
        for reason in result.record.escalations:
            out.print(f"  [yellow]![/yellow] {reason.rule}: {printable(reason.detail)}")
        thread = printable(result.thread_id)
        out.print(f"thread id: [bold]{thread}[/bold]")
        out.print(f"approve: payops approve {thread}")
        out.print(f"reject:  payops reject {thread} --reason '...'")
        out.print(f"[dim]from any folder that uses this state: {printable(_state(ctx))}[/dim]")
        return
    from agent.render import render_stats

    with ctx.learning_store() as store:
        stats = store.stats("action")
    render_stats(out, stats, "learning statistics by action")
    out.print(
        f"[dim]thread {printable(result.thread_id)}, {result.record.latency_ms:.0f} ms; "
        f"state: {printable(_state(ctx))}[/dim]"
    )


def _context(
    model: str | None,
    config: Path | None,
    depth: int | None,
    windows: tuple[TimeWindow | None, TimeWindow | None] = (None, None),
) -> Context:
    from agent.context import Context
    from agent.runner import chat_model

    baseline, current = windows
    return Context(
        config=_config(config, depth), model=chat_model(model), baseline=baseline, current=current
    )


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
    show_all: AllOption = False,
) -> None:
    """Run the agent loop once: observe -> reason -> guard -> act -> learn."""
    with user_errors():
        from agent.render import RunView
        from agent.runner import sqlite_checkpointer, start_run

        out = make_console()
        source = data or _demo_scenario()
        ctx = _context(model, config, depth, _windows(baseline, current))
        dims = _dimensions(dimensions)
        # Loaded here (the graph reuses it) to report quarantined rows and dimensions.
        ds = ctx.dataset(str(source), lenient, dims)
        _quarantined(ds)
        view = RunView(
            out,
            str(source),
            choice=ds.dimension_choice,
            kill_switch=_kill_switch(ctx, config),
            show_all=show_all,
        )
        with sqlite_checkpointer(ctx.state_dir) as saver:
            result = start_run(
                source,
                ctx,
                saver,
                lenient=lenient,
                dimensions=dims,
                on_update=None if as_json else view,
            )
        _finish(result, as_json, ctx, out)


def _resume(
    thread: str, approved: bool, reason: str, by: str, as_json: bool, model: str | None
) -> None:
    with user_errors():
        from agent.chat.command import answer_thread, chat_context
        from agent.chat.session import is_chat_thread
        from agent.render import RunView
        from agent.runner import RunError, resume_run, saved_state, sqlite_checkpointer
        from agent.state import Approval

        out = make_console()
        ctx = _context(model, None, None)
        view = RunView(out, thread, kill_switch=_kill_switch(ctx, None))
        on_update = None if as_json else view
        approval = Approval(approved=approved, by=by, reason=reason)
        with sqlite_checkpointer(ctx.state_dir) as saver:
            if is_chat_thread(saver, thread):
                chat = chat_context(model, ctx.config)
                answer_thread(saver, chat, out, thread, approval, as_json=as_json)
                return
            view.prime(saved_state(saver, thread))
            try:
                result = resume_run(
                    thread,
                    approval,
                    ctx,
                    saver,
                    on_update=on_update,
                )
            except RunError as exc:
                raise UserError(f"{exc}; state: {_state(ctx)}") from None
        _finish(result, as_json, ctx, out)


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

        out = make_console()
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
    show_all: AllOption = False,
) -> None:
    """Find anomalous segments and their root cause (no reasoning, no action)."""
    with user_errors():
        from agent.render import render_observation
        from tools.config import find_state_dir
        from tools.data import load
        from tools.observe import observe as run_observe
        from tools.scan_cache import ScanCache

        cfg = _config(config, depth)
        base, cur = _windows(baseline, current)
        ds = load(
            data,
            lenient=lenient,
            dimensions=_dimensions(dimensions),
            baseline=base,
            current=cur,
            cache=ScanCache(find_state_dir().path / "cache"),
        )
        _quarantined(ds)
        result = run_observe(ds, cfg.observe, baseline=base, current=cur)
        if as_json:
            record = result.record()
            choice = ds.dimension_choice
            record["dimensions"] = list(ds.dimensions)
            record["skipped_dimensions"] = [
                {"name": s.name, "reason": s.reason} for s in (choice.skipped if choice else ())
            ]
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            render_observation(
                make_console(), result, str(data), choice=ds.dimension_choice, show_all=show_all
            )


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="folder to write scenarios in")],
    kind: Annotated[str | None, typer.Option(help=KIND_HELP)] = None,
    seed: Annotated[int, typer.Option(help="seed: same seed, same data")] = 0,
    rows: Annotated[int, typer.Option(help="transactions per scenario")] = 20_000,
    all_kinds: Annotated[bool, typer.Option("--all", help="one scenario of every kind")] = False,
    fmt: Annotated[str, typer.Option("--format", help="csv.gz, csv, parquet or jsonl")] = "csv.gz",
    force: Annotated[
        bool, typer.Option("--force", help="replace scenario folders that already exist")
    ] = False,
) -> None:
    """Write recorded scenario folders with synthetic transactions and ground truth."""
    with user_errors():
        from tools.contract import INCIDENT_KINDS
        from tools.generate import GenerateOptions, generate_all, generate_scenario
        from tools.output import check_output_dir

        out = make_console()
        if rows < 100:
            raise UserError("--rows must be at least 100")
        if fmt not in ("csv.gz", "csv", "parquet", "jsonl"):
            raise UserError("--format must be csv.gz, csv, parquet or jsonl")
        check_output_dir(out_dir, "OUT")
        options = GenerateOptions(file_format=fmt)
        if all_kinds:
            paths = generate_all(out_dir, seed, rows, options=options, replace=force)
        else:
            if kind is None or kind not in INCIDENT_KINDS:
                raise UserError(f"--kind must be one of {', '.join(INCIDENT_KINDS)} (or use --all)")
            paths = [generate_scenario(out_dir, kind, seed, rows, options=options, replace=force)]
        for p in paths:
            out.print(printable(str(p)))


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
            from agent.render import render_stats

            render_stats(make_console(), stats, f"learning statistics by {by}")


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
        make_console().print(f"wrote {n} outcomes to {printable(str(path))}")


@app.command("config")
def show_config(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the settings as JSON")] = False,
) -> None:
    """Print the settings in force, each with where it came from (default, file, environment)."""
    with user_errors():
        from agent.render import render_settings
        from tools.config import effective_settings, find_state_dir

        found, settings = effective_settings(config)
        state = find_state_dir()
        if as_json:
            document = {
                "config_file": None if found.path is None else str(found.path),
                "state_dir": str(state.path),
                "state_dir_origin": state.origin,
                "settings": [
                    {"key": s.key, "value": s.value, "source": s.source, "note": s.note}
                    for s in settings
                ],
            }
            sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
            return
        render_settings(make_console(), found.describe(), state.describe(), settings)
