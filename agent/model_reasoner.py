"""The model path of `reason`: ask a chat model to choose a remedy, and never trust it blindly.

The deterministic reasoner has already classified the incident and ranked candidate
remedies. Here a chat model picks one as a structured `DecisionProposal`; the answer is
used only if it is a well-formed catalogue action inside the evidence. Any failure returns
the deterministic fallback, marked `fallback:<why>` (CONTRACT.md section 3), so a faulty
or unreachable model never fails a run. Free of graph code: the `reason` node calls
`decide_with_model`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from pydantic import BaseModel, Field, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.wait import wait_base

from agent.models import model_label, wrap_evidence
from tools.contract import (
    ACTION_NAMES,
    DEFAULT_RISK,
    AnomalyRecord,
    Decision,
    IncidentKind,
    ProcessorInfo,
    RecentChange,
    Segment,
)

log = logging.getLogger(__name__)

PROMPT_PATH = Path(__file__).resolve().parent.parent / "prompts" / "reason.md"

MAX_ATTEMPTS = 3
# Small waits: a run is interactive, and the fallback is always available.
DEFAULT_WAIT: wait_base = wait_exponential(multiplier=0.5, min=0.5, max=4.0)
MAX_RATIONALE_CHARS = 600

FallbackReason = Literal[
    "model_error", "unparseable", "outside_catalogue", "invalid_params", "out_of_bounds"
]


# ---------------------------------------------------------------------------------------
# What the model reads and what it fills.


class IncidentHypothesis(BaseModel):
    """One incident classification the deterministic reasoner considered."""

    incident_kind: IncidentKind
    confidence: float
    evidence: list[str] = Field(default_factory=list)
    # The root cause this hypothesis reads, when it is an alternative the data fits as
    # well as the primary one (None: the primary root cause).
    segment: Segment | None = None


class RemedyCandidate(BaseModel):
    """A valid remedy with its simulated effect; `score` is the deterministic ranking."""

    decision: Decision
    estimated_improvement: float
    score: float


class ReasoningEvidence(BaseModel):
    """Everything the model is shown, serialised as JSON between the evidence delimiters.

    `candidates` are listed best first (the stub picks the first). Keep `anomalies` to the
    top few: it is prompt text, and the model needs the lead signals, not the long tail.
    """

    scenario_id: str
    incident_kind: IncidentKind
    hypotheses: list[IncidentHypothesis] = Field(default_factory=list)
    root_cause: list[Segment] = Field(default_factory=list)
    anomalies: list[AnomalyRecord] = Field(default_factory=list)
    candidates: list[RemedyCandidate] = Field(default_factory=list)
    processors: dict[str, ProcessorInfo] = Field(default_factory=dict)
    recent_changes: list[RecentChange] = Field(default_factory=list)


class DecisionProposal(BaseModel):
    """Choose one remedy from the action catalogue for the incident in the evidence."""

    # Plain types on purpose: an out-of-catalogue action or out-of-range confidence must
    # parse, so it is reported as such rather than as an unparseable answer.
    action: str = Field(description="one action name from the catalogue")
    params: dict[str, Any] = Field(description="that action's parameters")
    confidence: float = Field(description="probability the remedy is right, 0 to 1")
    rationale: str = Field(description="two or three sentences naming the evidence used")


@cache
def system_prompt() -> str:
    """The system prompt of the reasoning call (prompts/reason.md), read once."""
    return PROMPT_PATH.read_text(encoding="utf-8")


def build_messages(evidence: ReasoningEvidence) -> list[SystemMessage | HumanMessage]:
    """The messages of the reasoning call: the system prompt, then the delimited evidence."""
    human = "Choose one remedy for the incident in this evidence.\n" + wrap_evidence(
        evidence.model_dump_json()
    )
    return [SystemMessage(content=system_prompt()), HumanMessage(content=human)]


# ---------------------------------------------------------------------------------------
# Retrying transient failures.

# Exception class names (anywhere in the MRO) of provider SDKs and HTTP clients that mean
# "try again": openai/anthropic/httpx/google. Matched by name so no SDK must be importable.
_TRANSIENT_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "RateLimitError",
        "InternalServerError",
        "ServiceUnavailableError",
        "OverloadedError",
        "TransportError",
        "TimeoutException",
        "ServiceUnavailable",
        "DeadlineExceeded",
        "ResourceExhausted",
    }
)
_RETRY_STATUS = frozenset({408, 409, 425, 429})


def _status_code(exc: BaseException) -> int | None:
    for holder in (exc, getattr(exc, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def is_transient_error(exc: BaseException) -> bool:
    """Whether a model call that raised `exc` is worth repeating.

    Connection and timeout errors, HTTP 408/409/425/429 and 5xx, and the provider SDKs'
    connection / timeout / rate-limit / server-error classes are. Anything else (a bad
    request, an authentication error, a bug) will fail the same way again.
    """
    if isinstance(exc, GraphBubbleUp):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    code = _status_code(exc)
    if code is not None:
        return code in _RETRY_STATUS or 500 <= code < 600
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


# ---------------------------------------------------------------------------------------
# Checking the answer.


class _Rejected(Exception):
    """The model's answer cannot be used; carries the reason for `fallback:<why>`."""

    def __init__(self, why: FallbackReason, detail: str) -> None:
        super().__init__(detail)
        self.why = why
        self.detail = detail


def _known_pairs(evidence: ReasoningEvidence) -> tuple[set[tuple[str, str]], set[str]]:
    """The (dimension, value) pairs and processor names the evidence mentions."""
    segments: list[Segment] = [*evidence.root_cause]
    segments += [a.segment for a in evidence.anomalies]
    segments += [c.target for c in evidence.recent_changes]
    processors = set(evidence.processors)
    for candidate in evidence.candidates:
        segments.append(candidate.decision.target_segment())
        for key in ("from_processor", "to_processor", "backup_processor"):
            value = candidate.decision.params.get(key)
            if isinstance(value, str):
                processors.add(value)
    pairs = {(dim, value) for seg in segments for dim, value in seg.items()}
    processors |= {value for dim, value in pairs if dim == "processor"}
    pairs |= {("processor", p) for p in processors}
    return pairs, processors


def _change_key(change: RecentChange) -> str:
    # Canonical JSON, so key order and omitted nulls do not make the same change differ.
    return json.dumps(change.model_dump(mode="json", exclude_none=True), sort_keys=True)


def _check_bounds(decision: Decision, evidence: ReasoningEvidence) -> None:
    """Reject a decision that names a segment, processor or change the evidence lacks."""
    pairs, processors = _known_pairs(evidence)
    if decision.action == "rollback_config":
        change = RecentChange.model_validate(decision.params["change"])
        if _change_key(change) not in {_change_key(c) for c in evidence.recent_changes}:
            raise _Rejected("out_of_bounds", "rollback_config names a change not in the evidence")
    else:
        unknown = sorted(set(decision.target_segment().items()) - pairs)
        if unknown:
            shown = ", ".join(f"{dim}={value!r}" for dim, value in unknown)
            raise _Rejected("out_of_bounds", f"segment not in the evidence: {shown}")
    for key in ("from_processor", "to_processor", "backup_processor"):
        value = decision.params.get(key)
        if isinstance(value, str) and value not in processors:
            raise _Rejected("out_of_bounds", f"{key} {value!r} is not a processor in the evidence")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean_rationale(text: str) -> str:
    """The model's rationale as a record can hold it: no control characters, bounded."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_RATIONALE_CHARS else text[: MAX_RATIONALE_CHARS - 1] + "…"


def _to_decision(result: Any, label: str, evidence: ReasoningEvidence) -> Decision:
    """The model's structured answer as a Decision, or _Rejected saying why not."""
    parsed = result.get("parsed") if isinstance(result, dict) else None
    if not isinstance(parsed, DecisionProposal):
        error = result.get("parsing_error") if isinstance(result, dict) else None
        detail = f"{type(error).__name__}" if error is not None else "no tool call in the answer"
        raise _Rejected("unparseable", detail)
    if parsed.action not in ACTION_NAMES:
        shown = repr(parsed.action[:60])
        raise _Rejected("outside_catalogue", f"action {shown} is not in the catalogue")
    if not (math.isfinite(parsed.confidence) and 0.0 <= parsed.confidence <= 1.0):
        raise _Rejected("out_of_bounds", f"confidence {parsed.confidence} is outside [0, 1]")
    try:
        decision = Decision(
            action=parsed.action,
            params=parsed.params,
            confidence=parsed.confidence,
            risk=DEFAULT_RISK[parsed.action],
            reasoner=f"model:{label}",
            rationale=_clean_rationale(parsed.rationale),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or parsed.action
        raise _Rejected("invalid_params", f"{parsed.action}: {where}: {first['msg']}") from None
    _check_bounds(decision, evidence)
    return decision


def _fallback(fallback: Decision, why: FallbackReason, detail: str) -> Decision:
    log.warning("model answer not used (%s): %s", why, detail)
    note = f"model answer not used ({why}): {detail}"[:300]
    rationale = f"{fallback.rationale} [{note}]" if fallback.rationale else f"[{note}]"
    return fallback.model_copy(update={"reasoner": f"fallback:{why}", "rationale": rationale})


def decide_with_model(
    model: BaseChatModel,
    evidence: ReasoningEvidence,
    fallback: Decision,
    *,
    wait: wait_base = DEFAULT_WAIT,
    config: RunnableConfig | None = None,
) -> Decision:
    """Ask `model` to choose a remedy for `evidence`; return it, or `fallback` if unusable.

    Transient errors are retried (3 attempts, exponential `wait`; pass `wait_none()` in
    tests). The answer is used only when it parses, names a catalogue action with valid
    params and a confidence in [0, 1], and stays inside the evidence's segments,
    processors and changes; it then gets `reasoner="model:<label>"` and the catalogue's
    default risk. Otherwise `fallback` is returned with `reasoner="fallback:<why>"` and the
    reason appended to its rationale. Never raises because of the model, but lets
    langgraph's GraphBubbleUp (an interrupt) through. `config` is passed to the model call
    (callbacks, tracing).
    """
    label = model_label(model)
    messages = build_messages(evidence)
    try:
        structured = model.with_structured_output(DecisionProposal, include_raw=True)
        retrying = Retrying(
            stop=stop_after_attempt(MAX_ATTEMPTS),
            wait=wait,
            retry=retry_if_exception(is_transient_error),
            reraise=True,
        )
        result = retrying(structured.invoke, messages, config)
    except GraphBubbleUp:
        raise
    except Exception as exc:  # a model may fail in any way; the fallback is always valid
        return _fallback(fallback, "model_error", f"{type(exc).__name__}: {exc}"[:200])
    try:
        return _to_decision(result, label, evidence)
    except _Rejected as rejected:
        return _fallback(fallback, rejected.why, rejected.detail)
