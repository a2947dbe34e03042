"""Shared pieces of the chat tests: sessions in a temporary state folder, scripted models."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.chat.context import ChatContext
from agent.chat.session import ChatSession
from agent.runner import memory_checkpointer

Step = list[tuple[str, dict[str, Any]]] | str


def session(
    data: Path, home: Path, model: BaseChatModel | None = None, **kwargs: Any
) -> ChatSession:
    """A chat session on `data` with its state in `home` and in-memory checkpoints."""
    ctx = ChatContext(state_dir=home, model=model)
    return ChatSession(ctx, memory_checkpointer(), data, **kwargs)


class ScriptedModel(BaseChatModel):
    """A chat model that plays a script: step i of the current turn is `script[i]`.

    A step is a list of (tool, args) calls or the answer text. The step is chosen by how
    many model replies the turn already has (a pure function of the messages), so a node
    that re-runs on resume replies the same. `delay_s` makes every reply slow.
    """

    model_name: str = "scripted"
    script: list[Any]
    delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        last_human = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
        replies = sum(isinstance(m, AIMessage) for m in messages[last_human:])
        step = self.script[min(replies, len(self.script) - 1)]
        if isinstance(step, str):
            message = AIMessage(content=step)
        else:
            calls = [
                ToolCall(name=name, args=args, id=f"s{last_human}-{replies}-{i}", type="tool_call")
                for i, (name, args) in enumerate(step)
            ]
            message = AIMessage(content="", tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept the tools as a hosted model does."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


def shown(rate: float) -> str:
    """A success rate as answers print it."""
    return f"{rate * 100:.1f}%"
