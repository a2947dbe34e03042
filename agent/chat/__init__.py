"""`payops chat`: investigate anomalies in conversation, with the loop's own tools.

`build_chat_graph()` returns the uncompiled graph (as `agent.graph.build_graph()` does for
the loop), so LangGraph's server can load it.
"""

from agent.chat.graph import build_chat_graph

__all__ = ["build_chat_graph"]
