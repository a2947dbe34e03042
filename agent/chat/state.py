"""The chat's state: the conversation, and which data it is about (checkpointed per thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field

from tools.contract import TimeWindow

if TYPE_CHECKING:
    from agent.chat.context import ChatContext, Investigation


class ChatState(BaseModel):
    """One conversation. The data fields are kept so that a thread resumed in another
    process (`payops chat --thread`, `payops approve`) reads the same data and windows."""

    messages: Annotated[list[AnyMessage], add_messages] = Field(default_factory=list)
    source: str = Field(default="", description="transactions file or scenario folder")
    lenient: bool = False
    dimensions: list[str] | None = None
    baseline: TimeWindow | None = None
    current: TimeWindow | None = None

    def investigation(self, ctx: ChatContext) -> Investigation:
        """The investigation of this conversation's data and windows."""
        if not self.source:
            raise ValueError("the conversation names no data: start it with a data file")
        return ctx.investigation(
            self.source, self.lenient, self.dimensions, self.baseline, self.current
        )
