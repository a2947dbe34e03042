"""The interactive `payops chat`: questions, slash commands, line editing and history."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from agent.chat.render import render_answer, render_message, render_pending, safe
from agent.chat.session import ChatError, ChatSession, TurnResult
from agent.chat.tools import TOOLS
from agent.chat.windows import window_text
from agent.state import Approval

HISTORY_FILE = "chat_history"
HISTORY_LENGTH = 1000
PROMPT = "payops> "

COMMANDS: dict[str, str] = {
    "/help": "this list",
    "/tools": "the tools and what each answers",
    "/reset": "start a new thread (the old one stays saved)",
    "/thread ID": "continue another thread (no ID: show this one)",
    "/approve": "approve the pending proposal: it is executed once",
    "/reject REASON": "reject the pending proposal: nothing is executed",
    "/exit": "leave (also Ctrl-D)",
}


def _history(path: Path) -> Callable[[], None]:
    """Line editing with a history kept in `path`; returns the function that saves it."""
    try:
        import readline
    except ImportError:  # no line editing on this platform: plain input() still works
        return lambda: None
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LENGTH)

    def save() -> None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)

    return save


def finish_turn(console: Console, session: ChatSession, turn: TurnResult, hint: str) -> None:
    """The end of a turn: the answer, or what waits for approval and how to answer it."""
    render_answer(console, turn)
    if turn.pending is not None:
        render_pending(console, turn.pending, session.thread_id)
        console.print(hint)


def _help(console: Console) -> None:
    for command, what in COMMANDS.items():
        console.print(f"  [bold]{safe(command)}[/bold]  {safe(what)}")
    console.print("  anything else is a question, e.g. 'what is wrong?'")


def _tools(console: Console) -> None:
    for tool in TOOLS:
        marker = " [yellow](needs approval)[/yellow]" if tool.effect != "none" else ""
        console.print(f"  [bold]{tool.name}[/bold]{marker}: {safe(tool.description)}")


def run_repl(session: ChatSession, console: Console, *, by: str = "operator") -> None:
    """Read questions and commands until /exit or end of input."""
    save = _history(session.ctx.path(HISTORY_FILE))
    inv = session.investigation()
    console.print(
        f"[bold]payops chat[/bold] on {safe(inv.dataset.source)}: {inv.dataset.rows:,} "
        f"transactions, baseline {window_text(inv.baseline)}, current "
        f"{window_text(inv.current)}"
    )
    console.print(f"thread {safe(session.thread_id)}; /help for commands")
    hint = "answer with /approve or /reject REASON"

    def show(message: object) -> None:
        render_message(console, message)  # type: ignore[arg-type]

    try:
        while True:
            try:
                line = input(PROMPT).strip()
            except EOFError:
                console.print()
                break
            except KeyboardInterrupt:
                console.print()
                continue
            if not line:
                continue
            command, _, rest = line.partition(" ")
            try:
                if command in ("/exit", "/quit"):
                    break
                if command == "/help":
                    _help(console)
                elif command == "/tools":
                    _tools(console)
                elif command == "/reset":
                    console.print(f"new thread {safe(session.reset())}")
                elif command == "/thread":
                    if rest.strip():
                        session.switch(rest.strip())
                    console.print(f"thread {safe(session.thread_id)}")
                elif command == "/approve":
                    turn = session.answer(Approval(approved=True, by=by), show)
                    finish_turn(console, session, turn, hint)
                elif command == "/reject":
                    reason = rest.strip() or "no reason given"
                    turn = session.answer(Approval(approved=False, by=by, reason=reason), show)
                    finish_turn(console, session, turn, hint)
                elif command.startswith("/"):
                    console.print(f"[red]unknown command {safe(command)}[/red]; /help lists them")
                else:
                    finish_turn(console, session, session.ask(line, show), hint)
            except ChatError as exc:
                console.print(f"[red]{safe(exc)}[/red]")
    finally:
        save()
