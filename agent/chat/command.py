"""What `payops chat` and `payops approve|reject` on a chat thread do (agent/cli.py wires
them): build the context, open the thread, run one question or the REPL, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from rich.console import Console

from agent.chat.context import ChatContext
from agent.chat.render import render_message
from agent.chat.repl import finish_turn, run_repl
from agent.chat.session import ChatError, ChatSession, TurnResult
from agent.models import STUB_SPEC, load_chat_model
from agent.runner import NO_MODEL
from agent.state import Approval
from tools.config import PayopsConfig
from tools.contract import TimeWindow


def chat_context(model: str | None, config: PayopsConfig) -> ChatContext:
    """The chat's context: the offline stub unless `model` names a real one."""
    spec = (model or STUB_SPEC).strip()
    if spec.lower() in NO_MODEL:
        raise ChatError("chat needs a model: 'stub' (offline, the default) or provider:model")
    return ChatContext(config=config, model=None if spec == STUB_SPEC else load_chat_model(spec))


def _print_json(turn: TurnResult) -> None:
    sys.stdout.write(json.dumps(turn.to_json(), ensure_ascii=False, default=str) + "\n")


def run_chat(
    data: Path,
    saver: BaseCheckpointSaver[Any],
    ctx: ChatContext,
    console: Console,
    *,
    thread: str | None,
    once: str | None,
    as_json: bool,
    lenient: bool,
    dimensions: list[str] | None,
    baseline: TimeWindow | None,
    current: TimeWindow | None,
    by: str,
) -> None:
    """One question (`once`) or the REPL, in a new or continued thread."""
    session = ChatSession(
        ctx,
        saver,
        data,
        thread_id=thread,
        lenient=lenient,
        dimensions=dimensions,
        baseline=baseline,
        current=current,
    )
    session.investigation()  # load the data before the first question
    if once is None:
        run_repl(session, console, by=by)
        return
    show = None if as_json else (lambda m: render_message(console, m))
    turn = session.ask(once, show)
    if as_json:
        _print_json(turn)
        return
    hint = (
        f"approve: payops approve {session.thread_id}\n"
        f"reject:  payops reject {session.thread_id} --reason '...'"
    )
    finish_turn(console, session, turn, hint)


def answer_thread(
    saver: BaseCheckpointSaver[Any],
    ctx: ChatContext,
    console: Console,
    thread: str,
    approval: Approval,
    *,
    as_json: bool,
) -> None:
    """`payops approve|reject THREAD` for a chat thread: answer its pending proposal."""
    session = ChatSession.of_thread(ctx, saver, thread)
    show = None if as_json else (lambda m: render_message(console, m))
    turn = session.answer(approval, show)
    if as_json:
        _print_json(turn)
        return
    finish_turn(console, session, turn, "")
