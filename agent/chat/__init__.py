"""`payops chat`: investigate anomalies in conversation, with the loop's own tools.

`build_chat_graph()` returns the uncompiled graph (as `agent.graph.build_graph()` does for
the loop), so LangGraph's server can load it. It is imported on first use: the chat's
light modules (formats, windows) do not pull LangGraph in.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_chat_graph"]


def __getattr__(name: str) -> Any:
    if name == "build_chat_graph":
        from agent.chat.graph import build_chat_graph

        return build_chat_graph
    raise AttributeError(name)
