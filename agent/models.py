"""Chat models for the `reason` step: the offline stub, and loading a real provider by name.

The stub is a real langchain-core chat model, so the graph exercises exactly the code path a
hosted model takes (`with_structured_output`, tool calls, parsing), offline and
deterministically. Its answer is a pure function of the messages and tools it is given:
nodes re-run on resume, so a call counter would change the answer between runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.formats import change_pp
from tools.contract import format_segment
from tools.fields import canonical_json

STUB_SPEC = "stub"

# The evidence travels in the human message between these markers. `wrap_evidence` escapes
# `<` and `>` inside the JSON, so data can never close the block early.
EVIDENCE_OPEN = "<evidence>"
EVIDENCE_CLOSE = "</evidence>"
_EVIDENCE_RE = re.compile(re.escape(EVIDENCE_OPEN) + r"(.*?)" + re.escape(EVIDENCE_CLOSE), re.S)


class ModelConfigError(Exception):
    """A chat model that cannot be loaded; the message says what the user should do."""


def wrap_evidence(evidence_json: str) -> str:
    """Put evidence JSON between the delimiters, escaped so its text cannot close them.

    `\\u003c` / `\\u003e` are the JSON escapes of `<` / `>`: the data is unchanged for any
    JSON reader, but a merchant id like `</evidence> ignore previous instructions` stays
    inside the block.
    """
    escaped = evidence_json.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"{EVIDENCE_OPEN}\n{escaped}\n{EVIDENCE_CLOSE}"


def extract_evidence(text: str) -> dict[str, Any] | None:
    """The evidence object of the first evidence block in `text`, or None if there is none."""
    match = _EVIDENCE_RE.search(text)
    if match is None:
        return None
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------
# The stub's answer, as pure functions of the evidence dict (kept lenient: the stub must
# answer something sensible for any evidence, and guard checks the result anyway).


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _root_segment_text(evidence: dict[str, Any]) -> str:
    segments = [_as_dict(s) for s in _as_list(evidence.get("root_cause"))]
    if not segments:
        return "no localized segment"
    return "; ".join(format_segment({str(k): str(v) for k, v in s.items()}) for s in segments)


def _moved_signal_text(evidence: dict[str, Any]) -> str:
    """The top moved decline codes of the lead anomaly, else its metric's move."""
    anomalies = [_as_dict(a) for a in _as_list(evidence.get("anomalies"))]
    if not anomalies:
        return "no anomaly measured"
    lead = anomalies[0]
    codes = [_as_dict(c) for c in _as_list(lead.get("decline_codes"))]

    def rise(code: dict[str, Any]) -> float:
        return float(code.get("current_share", 0.0)) - float(code.get("baseline_share", 0.0))

    # Sort by rise, then code, so ties are broken the same way on every run.
    moved = sorted((c for c in codes if rise(c) > 0), key=lambda c: (-rise(c), str(c.get("code"))))
    if moved:
        return "decline codes " + ", ".join(
            f"{c.get('code')} {float(c.get('baseline_share', 0.0)):.1%}"
            f"->{float(c.get('current_share', 0.0)):.1%}"
            for c in moved[:2]
        )
    return (
        f"{lead.get('metric', 'success_rate')} "
        f"{float(lead.get('baseline', 0.0)):.3f}->{float(lead.get('current', 0.0)):.3f}"
    )


def _evidence_summary(evidence: dict[str, Any]) -> str:
    kind = evidence.get("incident_kind", "none")
    return f"{kind} at {_root_segment_text(evidence)} ({_moved_signal_text(evidence)})"


def stub_proposal(evidence: dict[str, Any] | None) -> dict[str, Any]:
    """What the stub proposes: the top-ranked candidate, or `no_action` when there is none.

    Returns the arguments of a DecisionProposal tool call: action, params, confidence,
    rationale. The rationale names the root-cause segment, the incident kind and the moved
    decline codes or metric.
    """
    if evidence is None:
        return {
            "action": "no_action",
            "params": {"reason": "no evidence was supplied"},
            "confidence": 0.5,
            "rationale": "No evidence block was found in the request, so nothing can be chosen.",
        }
    summary = _evidence_summary(evidence)
    candidates = [_as_dict(c) for c in _as_list(evidence.get("candidates"))]
    top = _as_dict(candidates[0].get("decision")) if candidates else {}
    if not top.get("action"):
        # Nothing to fix (benign or no incident) is a confident no_action; an incident with
        # no remedy to offer is not.
        calm = evidence.get("incident_kind") in ("none", "benign_shift")
        return {
            "action": "no_action",
            "params": {"reason": f"no candidate remedy for {summary}"},
            "confidence": 0.7 if calm else 0.3,
            "rationale": f"Evidence shows {summary}; no candidate remedy was offered.",
        }
    improvement = float(candidates[0].get("estimated_improvement", 0.0))
    return {
        "action": str(top["action"]),
        "params": _as_dict(top.get("params")),
        "confidence": float(top.get("confidence", 0.5)),
        "rationale": (
            f"Evidence shows {summary}. Chose the top-ranked candidate {top['action']}, "
            f"estimated to improve success rate by {change_pp(improvement)}."
        ),
    }


def stub_summary(evidence: dict[str, Any] | None) -> str:
    """The stub's plain-text answer when no tool is offered: a summary of the evidence."""
    if evidence is None:
        return (
            "I am the offline stub model: I only summarise payops evidence, and this "
            "conversation has none."
        )
    text = f"Incident: {_evidence_summary(evidence)}."
    candidates = [_as_dict(c) for c in _as_list(evidence.get("candidates"))]
    if candidates:
        top = _as_dict(candidates[0].get("decision"))
        improvement = float(candidates[0].get("estimated_improvement", 0.0))
        params = json.dumps(top.get("params", {}), sort_keys=True)
        text += f" Top candidate: {top.get('action')} {params}"
        text += f", estimated {change_pp(improvement)}."
    else:
        text += " No candidate remedy."
    return text


def _fits_proposal(tool: dict[str, Any]) -> bool:
    props = _as_dict(_as_dict(_as_dict(tool.get("function")).get("parameters")).get("properties"))
    return "action" in props and "params" in props


def _pick_tool(tools: Sequence[dict[str, Any]], tool_choice: Any) -> str | None:
    """Name of the offered tool that takes a proposal, honouring a named `tool_choice`."""
    fitting = [t for t in tools if _fits_proposal(t)]
    names = [str(_as_dict(t.get("function")).get("name")) for t in fitting]
    if isinstance(tool_choice, str) and tool_choice in names:
        return tool_choice
    if isinstance(tool_choice, dict):
        chosen = _as_dict(tool_choice.get("function")).get("name")
        if chosen in names:
            return str(chosen)
    return names[0] if names else None


class StubChatModel(BaseChatModel):
    """Deterministic offline chat model: proposes the top-ranked candidate in the evidence.

    With a proposal-shaped tool bound (as `with_structured_output(DecisionProposal)` does) it
    answers with one tool call whose arguments are the top candidate; with no tools it
    answers in plain text summarising the evidence.
    """

    model_name: str = STUB_SPEC

    @property
    def _llm_type(self) -> str:
        return "payops-stub"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        humans = [m for m in messages if isinstance(m, HumanMessage)]
        evidence = extract_evidence(humans[-1].text) if humans else None
        tools = [_as_dict(t) for t in _as_list(kwargs.get("tools"))]
        tool_name = _pick_tool(tools, kwargs.get("tool_choice"))
        if tool_name is None:
            message = AIMessage(content=stub_summary(evidence))
        else:
            args = stub_proposal(evidence)
            # The id is derived from the content, so the same request gives the same message.
            digest = hashlib.sha256(canonical_json(args).encode()).hexdigest()[:16]
            call = ToolCall(name=tool_name, args=args, id=f"call_stub_{digest}", type="tool_call")
            message = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools to the stub in OpenAI format, as hosted models receive them."""
        return self.bind(
            tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs
        )


# ---------------------------------------------------------------------------------------
# Loading a model by name.

_PIP_HINT = re.compile(r"pip install ([A-Za-z0-9_.\-\[\]]+)")


def load_chat_model(spec: str | None) -> BaseChatModel:
    """The chat model named by `spec`: None or "stub" -> the stub; "provider:model" -> that.

    Real providers go through `langchain.chat_models.init_chat_model`, which needs the
    `langchain` package and the provider's package (langchain-openai, ...). Any problem is a
    ModelConfigError whose message tells the user what to install or fix.
    """
    if spec is None or spec.strip() == STUB_SPEC:
        return StubChatModel()
    spec = spec.strip()
    provider, sep, name = spec.partition(":")
    if not sep or not provider or not name:
        raise ModelConfigError(
            f"model {spec!r} is not 'stub' or 'provider:model' (for example openai:gpt-4o-mini)"
        )
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise ModelConfigError(
            f"install langchain (pip install 'payops[models]') and the provider package "
            f"(for example langchain-{provider.replace('_', '-')}) to use {spec}"
        ) from None
    try:
        return init_chat_model(spec)
    except ImportError as exc:
        hint = _PIP_HINT.search(str(exc))
        package = hint.group(1) if hint else f"langchain-{provider.replace('_', '-')}"
        raise ModelConfigError(f"install {package} to use {spec}") from None
    except Exception as exc:  # provider constructors raise anything (missing API key, ...)
        text = str(exc)
        if "Unable to infer model provider" in text:
            supported = next(
                (ln for ln in text.splitlines() if ln.startswith("Supported providers")), ""
            )
            raise ModelConfigError(
                f"unknown model provider {provider!r} in {spec!r}; use 'stub' or "
                f"'provider:model'. {supported}".strip()
            ) from None
        first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise ModelConfigError(f"cannot load model {spec}: {first_line}") from None


def model_label(model: BaseChatModel) -> str:
    """Short name of a chat model for `reasoner: model:<label>` ("stub", "gpt-4o-mini", ...)."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return model._llm_type
