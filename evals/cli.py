"""The `payops` command as installed: the agent's commands (agent/cli.py) and `eval`.

evals depends on agent, never the reverse. So the command that scores the agent is
defined here, and this module, at the top of the layers (tools < agent < evals), puts the
two together into the one entry point (`main`). As in agent/cli.py, heavy modules are
imported inside the command, so `payops --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent import cli as agent_cli
from agent.cli import UserError, user_errors
from tools.terminal import make_console

eval_app = typer.Typer(add_completion=False, context_settings=agent_cli.CONTEXT_SETTINGS)


@eval_app.command("eval")
def evaluate(
    paths: Annotated[list[Path] | None, typer.Argument(help="scenario folders or parents")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="model spec; give two to compare them"),
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="results JSONL")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write a report here")] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="parallel workers (default: every core)")
    ] = None,
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
        out = make_console()
        if chat:
            from evals.chat import run_chat_eval

            if model is not None and len(model) > 1:
                raise UserError("--chat takes one --model")
            scores = run_chat_eval(paths or [], model[0] if model else None, out_file, out)
            if not all(s.passed for s in scores):
                raise typer.Exit(1)
            return
        from evals.command import run_eval

        run_eval(paths or [], model or [], out_file, report, jobs, compare, out)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"payops {version('payops')}")
        raise typer.Exit()


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings=agent_cli.CONTEXT_SETTINGS,
)


@app.callback()
def _main(
    _: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """payops: observe authorization rates, reason about incidents, guard, act, learn."""


# Added without a name, a Typer's commands become the parent's own, in this order.
app.add_typer(agent_cli.app)
app.add_typer(eval_app)


def main() -> None:
    """Console-script entry point: every `payops` command."""
    app()
