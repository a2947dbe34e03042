"""Running chat turns: ask, answer a pending approval, and read a turn back as a record.

The CLI (`payops chat`, `payops approve` on a chat thread), `payops eval --chat` and the
tests all go through `ChatSession`, so a turn means the same thing everywhere.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from agent.chat.context import ChatContext, Investigation
from agent.chat.graph import META_KEY, compile_chat_graph
from agent.chat.state import ChatState
from agent.chat.tools import turn_messages
from agent.state import Approval, ApprovalRequest
from tools.contract import TimeWindow

MessageHandler = Callable[[AnyMessage], None]
MAX_QUESTION_CHARS = 4000


class ChatError(ValueError):
    """A chat request that cannot proceed for a reason the user can fix (exit code 2)."""


def new_thread_id() -> str:
    """A fresh chat thread id."""
    return f"chat-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a turn: what was asked, what the model saw, the whole result."""

    id: str
    name: str
    args: dict[str, Any]
    content: str | None = None  # the compact JSON the model read (None while pending)
    data: Any = None  # the whole result (the tool message's artifact)
    error: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data."""
        return {
            "id": self.id,
            "name": self.name,
            "args": self.args,
            "error": self.error,
            "result": self.data if self.data is not None else self.content,
        }


@dataclass
class TurnResult:
    """A finished turn, or one paused for a person's approval."""

    thread_id: str
    question: str
    answer: str | None
    tool_calls: list[ToolCallRecord]
    pending: ApprovalRequest | None
    figures: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    stopped: str | None = None
    latency_ms: float = 0.0
    messages: list[AnyMessage] = field(default_factory=list)

    @property
    def tools_used(self) -> list[str]:
        """Names of the tools called in this turn, in order."""
        return [c.name for c in self.tool_calls]

    def tool_texts(self) -> list[str]:
        """What the model read from each tool of this turn."""
        return [c.content for c in self.tool_calls if c.content is not None]

    def to_json(self) -> dict[str, Any]:
        """The turn as JSON data (`payops chat --json`)."""
        return {
            "thread_id": self.thread_id,
            "question": self.question,
            "answer": self.answer,
            "verified": not self.unverified,
            "unverified_figures": self.unverified,
            "stopped": self.stopped,
            "tool_calls": [c.to_json() for c in self.tool_calls],
            "pending_approval": None
            if self.pending is None
            else self.pending.model_dump(mode="json"),
            "latency_ms": round(self.latency_ms, 1),
            "messages": [m.model_dump(mode="json") for m in self.messages],
        }


def _tool_calls(messages: list[AnyMessage]) -> list[ToolCallRecord]:
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    out = []
    for m in messages:
        if not isinstance(m, AIMessage):
            continue
        for call in m.tool_calls:
            cid = str(call.get("id"))
            res = results.get(cid)
            out.append(
                ToolCallRecord(
                    id=cid,
                    name=call["name"],
                    args=dict(call["args"]),
                    content=None if res is None else res.text,
                    data=None if res is None else res.artifact,
                    error=res is not None and res.status == "error",
                )
            )
    return out


def _open_proposal(messages: list[AnyMessage]) -> str | None:
    """The id of the last `propose_action` call that has no result yet, if any."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    for m in reversed(messages):
        if isinstance(m, AIMessage):
            for call in m.tool_calls:
                if call["name"] == "propose_action" and call.get("id") not in answered:
                    return str(call.get("id"))
            return None
    return None


class ChatSession:
    """A conversation about one dataset, kept in a checkpointed thread."""

    def __init__(
        self,
        ctx: ChatContext,
        checkpointer: BaseCheckpointSaver[Any],
        source: Path | str,
        *,
        thread_id: str | None = None,
        lenient: bool = False,
        dimensions: list[str] | None = None,
        baseline: TimeWindow | None = None,
        current: TimeWindow | None = None,
    ) -> None:
        self.ctx = ctx
        ctx.checkpointer = checkpointer
        self.graph = compile_chat_graph(checkpointer)
        self.data = ChatState(
            source=str(Path(source).resolve()),
            lenient=lenient,
            dimensions=dimensions,
            baseline=baseline,
            current=current,
        )
        self.thread_id = thread_id or new_thread_id()
        self._check_thread_data()

    @classmethod
    def of_thread(
        cls, ctx: ChatContext, checkpointer: BaseCheckpointSaver[Any], thread_id: str
    ) -> ChatSession:
        """The session of an existing chat thread, on the data the thread is about."""
        if not is_chat_thread(checkpointer, thread_id):
            raise ChatError(f"no chat thread {thread_id!r} in {ctx.state_dir}")
        state = compile_chat_graph(checkpointer).get_state(_config(thread_id))
        data = ChatState.model_validate({k: v for k, v in state.values.items() if k != "messages"})
        return cls(
            ctx,
            checkpointer,
            data.source,
            thread_id=thread_id,
            lenient=data.lenient,
            dimensions=data.dimensions,
            baseline=data.baseline,
            current=data.current,
        )

    @property
    def config(self) -> RunnableConfig:
        """The graph config of this thread."""
        return _config(self.thread_id)

    def investigation(self) -> Investigation:
        """Load the data (once per process) and resolve its windows."""
        return self.data.investigation(self.ctx)

    def _check_thread_data(self) -> None:
        values = self.graph.get_state(self.config).values
        source = values.get("source") if values else None
        if source and not values.get("messages"):
            raise ChatError(f"thread {self.thread_id} is a payops run, not a conversation")
        if source and source != self.data.source:
            raise ChatError(
                f"thread {self.thread_id} is about {source}, not {self.data.source}; "
                "start a new thread or give the same data"
            )

    def switch(self, thread_id: str) -> None:
        """Continue another thread (of the same data)."""
        previous = self.thread_id
        self.thread_id = thread_id
        try:
            self._check_thread_data()
        except ChatError:
            self.thread_id = previous
            raise

    def reset(self) -> str:
        """Start a new thread; the old one stays in the checkpointer."""
        self.thread_id = new_thread_id()
        return self.thread_id

    def messages(self) -> list[AnyMessage]:
        """Every message of the thread so far."""
        values = self.graph.get_state(self.config).values
        return list(values.get("messages", [])) if values else []

    def pending(self) -> ApprovalRequest | None:
        """The approval this thread waits for, if any."""
        snapshot = self.graph.get_state(self.config)
        if not snapshot.interrupts:
            return None
        return ApprovalRequest.model_validate(snapshot.interrupts[0].value)

    def ask(self, question: str, on_message: MessageHandler | None = None) -> TurnResult:
        """Answer one question in this thread (it may end waiting for an approval)."""
        question = question.strip()
        if not question:
            raise ChatError("empty question")
        if len(question) > MAX_QUESTION_CHARS:
            raise ChatError(f"a question is at most {MAX_QUESTION_CHARS} characters")
        waiting = self.pending()
        if waiting is not None:
            raise ChatError(
                f"thread {self.thread_id} waits for approval of {waiting.decision.action}: "
                "approve or reject it first"
            )
        payload = self.data.model_dump() | {"messages": [HumanMessage(content=question)]}
        return self._run(payload, question, on_message)

    def answer(self, approval: Approval, on_message: MessageHandler | None = None) -> TurnResult:
        """Approve or reject the pending proposal; the turn then finishes.

        The answer is one compare-and-set on the approvals store (the loop's), keyed by the
        proposal's tool call: of two racing answers one wins, the other is refused naming
        the first, and the turn resumes only with the answer that won. An approved action
        is executed once; the same answer given again finishes a turn whose process died
        after answering (the ledger keeps the action executed once).
        """
        snapshot = self.graph.get_state(self.config)
        if not snapshot.values:
            raise ChatError(f"no chat thread {self.thread_id!r}")
        call_id = _open_proposal(self.messages())
        if call_id is None or not (snapshot.interrupts or snapshot.next):
            raise ChatError(f"thread {self.thread_id} has no pending approval")
        request = snapshot.interrupts[0].value if snapshot.interrupts else None
        key = f"{self.thread_id}/{call_id}"
        with self.ctx.approvals() as approvals:
            record = approvals.get(key)
            if request is None and record is None:
                raise ChatError(f"thread {self.thread_id} has no pending approval")
            found = approvals.answer(
                key,
                approved=approval.approved,
                by=approval.by,
                reason=approval.reason,
                scenario_id=str((request or {}).get("scenario_id", "")),
                request=request if request is not None else record.request if record else {},
            )
        first = found.record
        winner = Approval(
            approved=first.status == "approved",
            by=first.answered_by or "operator",
            reason=first.reason or "",
        )
        if not found.won and winner.approved != approval.approved:
            word = "approved" if winner.approved else "rejected"
            raise ChatError(
                f"the proposal in thread {self.thread_id} was already {word} by {winner.by}; "
                f"it cannot be {'approved' if approval.approved else 'rejected'} now"
            )
        # Without an interrupt the answer was given but the turn did not finish: continue it.
        payload: Any = (
            Command(resume=winner.model_dump(mode="json")) if snapshot.interrupts else None
        )
        question = self._question()
        return self._run(payload, question, on_message)

    def _question(self) -> str:
        turn = turn_messages(self.messages())
        return turn[0].text if turn and isinstance(turn[0], HumanMessage) else ""

    def _run(self, payload: Any, question: str, on_message: MessageHandler | None) -> TurnResult:
        started = time.perf_counter()
        before = len(self.messages())
        for chunk in self.graph.stream(
            payload, self.config, context=self.ctx, stream_mode="updates", durability="sync"
        ):
            for node, update in chunk.items():
                if on_message is None or node == "__interrupt__" or not update:
                    continue
                for message in update.get("messages", []):
                    on_message(message)
        latency = (time.perf_counter() - started) * 1000.0
        return self._result(question, before, latency)

    def _result(self, question: str, before: int, latency_ms: float) -> TurnResult:
        messages = self.messages()
        turn = turn_messages(messages)
        pending = self.pending()
        last = messages[-1] if messages else None
        answer = None
        meta: dict[str, Any] = {}
        if pending is None and isinstance(last, AIMessage) and not last.tool_calls:
            answer = last.text
            meta = dict(last.response_metadata.get(META_KEY, {}))
        return TurnResult(
            thread_id=self.thread_id,
            question=question,
            answer=answer,
            tool_calls=_tool_calls(turn),
            pending=pending,
            figures=list(meta.get("figures", [])),
            unverified=list(meta.get("unverified", [])),
            stopped=meta.get("stopped"),
            latency_ms=latency_ms,
            messages=messages[before:],
        )


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def is_chat_thread(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> bool:
    """Whether `thread_id` is a chat conversation (rather than a loop run)."""
    # The chat state has default values, so a loop thread read as a chat one shows an
    # empty conversation: a chat thread is one with messages.
    values = compile_chat_graph(checkpointer).get_state(_config(thread_id)).values
    return bool(values and values.get("messages"))
