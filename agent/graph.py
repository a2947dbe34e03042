"""The payops loop as a LangGraph StateGraph: wiring only.

    observe -> reason -> guard -+-> act ------------> learn -> END
                                +-> approve -+-> act
                                |            +-> learn
                                +-> learn   (blocked, or nothing to do)

`act` is reachable only through `guard` (directly, or via a human's approval).
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent import nodes
from agent.context import Context
from agent.state import AgentState


def build_graph() -> StateGraph[AgentState, Context, Any, Any]:
    """The uncompiled graph (what LangGraph Studio loads)."""
    graph: StateGraph[AgentState, Context, Any, Any] = StateGraph(
        AgentState, context_schema=Context
    )
    graph.add_node("observe", nodes.observe_node)
    graph.add_node("reason", nodes.reason_node)
    graph.add_node("guard", nodes.guard_node)
    graph.add_node("approve", nodes.approve_node)
    graph.add_node("act", nodes.act_node)
    graph.add_node("learn", nodes.learn_node)
    graph.add_edge(START, "observe")
    graph.add_edge("observe", "reason")
    graph.add_edge("reason", "guard")
    graph.add_conditional_edges("guard", nodes.route_after_guard, ["act", "approve", "learn"])
    graph.add_conditional_edges("approve", nodes.route_after_approval, ["act", "learn"])
    graph.add_edge("act", "learn")
    graph.add_edge("learn", END)
    return graph


def compile_graph(
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The runnable loop; approvals need a checkpointer to pause and resume."""
    return build_graph().compile(checkpointer=checkpointer)
