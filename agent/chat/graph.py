"""The chat graph: a model node and LangGraph's ToolNode, looping until the model answers.

    START -> model -+-> tools -> model   (the model asked for tools)
                    +-> END              (the model answered)

Threads are checkpointed in the loop's SQLite checkpointer, so a conversation continues in
another process, and `propose_action` can pause for a person (a LangGraph interrupt).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.prebuilt.tool_node import ToolInvocationError
from langgraph.runtime import Runtime
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential

from agent.chat.context import ChatContext, Investigation
from agent.chat.figures import check_figures
from agent.chat.state import ChatState
from agent.chat.tools import ToolInputError, langchain_tools, tool_results, turn_messages
from agent.chat.windows import WINDOW_GRAMMAR, window_text
from agent.model_reasoner import is_transient_error
from tools import actions
from tools.data import DataError

PROMPT_PATH = Path(__file__).resolve().parent.parent.parent / "prompts" / "chat.md"
# History sent to the model, in approximate tokens (older turns are dropped first).
HISTORY_TOKENS = 24_000
# Where a turn's checks are kept on the answer: response_metadata["payops"].
META_KEY = "payops"


@cache
def _prompt_template() -> str:
    return PROMPT_PATH.read_text(encoding="utf-8")


def system_prompt(inv: Investigation) -> str:
    """The chat's system prompt for this data (prompts/chat.md)."""
    return _prompt_template().format(
        dimensions=", ".join(inv.dataset.dimensions),
        baseline=window_text(inv.baseline),
        current=window_text(inv.current),
        window_grammar=WINDOW_GRAMMAR,
        actions=actions.table(),
    )


def _note(text: str, **meta: Any) -> AIMessage:
    return AIMessage(content=text, response_metadata={META_KEY: meta})


def call_model(
    model: BaseChatModel,
    messages: list[BaseMessage],
    deadline_s: float,
    config: RunnableConfig | None = None,
) -> AIMessage:
    """One model call with the chat's tools bound, retried on transient errors, within a
    deadline. A failure or a timeout becomes an answer saying so (nothing is executed)."""
    try:
        bound = model.bind_tools(langchain_tools())
    except NotImplementedError:
        return _note(
            "This model cannot call tools, which chat needs; nothing was done.",
            stopped="model_error",
        )
    retrying = Retrying(
        stop=stop_after_attempt(3) | stop_after_delay(deadline_s),
        wait=wait_exponential(multiplier=0.5, min=0.5, max=4.0),
        retry=retry_if_exception(is_transient_error),
        reraise=True,
    )
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payops-chat-model")
    future = pool.submit(retrying, bound.invoke, messages, config)
    try:
        reply = future.result(timeout=deadline_s)
    except FutureTimeout:
        return _note(
            f"The model did not answer within {deadline_s:.0f} s; nothing was done. Ask again "
            "or narrow the question.",
            stopped="deadline",
        )
    except GraphBubbleUp:
        raise
    except Exception as exc:  # a provider may fail in any way; the turn must not crash
        return _note(
            f"The model failed ({type(exc).__name__}); nothing was done.", stopped="model_error"
        )
    finally:
        # A timed-out call cannot be killed; it is left to finish in the background.
        pool.shutdown(wait=False)
    if not isinstance(reply, AIMessage):
        return _note("The model gave no usable answer; nothing was done.", stopped="model_error")
    return reply


def model_node(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Ask the model for its next step: tool calls, or the answer (then check its figures)."""
    ctx = runtime.context
    inv = state.investigation(ctx)
    turn = turn_messages(state.messages)
    steps = sum(isinstance(m, AIMessage) for m in turn)
    if steps >= ctx.max_steps:
        return {
            "messages": [
                _note(
                    f"I stopped after {steps} tool steps without an answer (the step limit). "
                    "Ask a narrower question.",
                    stopped="step_limit",
                )
            ]
        }
    history: list[BaseMessage] = trim_messages(
        state.messages,
        max_tokens=HISTORY_TOKENS,
        token_counter=count_tokens_approximately,
        strategy="last",
        start_on="human",
    )
    messages: list[BaseMessage] = [SystemMessage(content=system_prompt(inv)), *history]
    reply = call_model(ctx.chat_model(inv), messages, ctx.model_deadline_s, get_config())
    if not reply.tool_calls:
        check = check_figures(reply.text, tool_results(state.messages))
        meta = dict(reply.response_metadata.get(META_KEY, {}))
        meta.update(figures=list(check.figures), unverified=list(check.unverified))
        reply = reply.model_copy(
            update={"response_metadata": {**reply.response_metadata, META_KEY: meta}}
        )
    return {"messages": [reply]}


def build_chat_graph() -> StateGraph[ChatState, ChatContext, Any, Any]:
    """The uncompiled chat graph (what LangGraph's server loads)."""
    graph: StateGraph[ChatState, ChatContext, Any, Any] = StateGraph(
        ChatState, context_schema=ChatContext
    )
    graph.add_node("model", model_node)
    graph.add_node(
        "tools",
        ToolNode(
            langchain_tools(),
            # Bad arguments go back to the model to correct; anything else is a bug.
            handle_tool_errors=(ToolInputError, ToolInvocationError, DataError),
        ),
    )
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, ["tools", END])
    graph.add_edge("tools", "model")
    return graph


def compile_chat_graph(
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The runnable chat; threads and approvals need a checkpointer."""
    return build_chat_graph().compile(checkpointer=checkpointer)
