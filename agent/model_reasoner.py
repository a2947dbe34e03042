"""The model path of `reason`: ask a chat model to choose a remedy, and never trust it blindly.

The deterministic reasoner has already classified the incident and ranked candidate
remedies. Here a chat model picks one as a structured `DecisionProposal`; the answer is
used only if it is a well-formed catalogue action inside the evidence. Any failure returns
the deterministic fallback, marked `fallback:<why>` (CONTRACT.md section 3), so a faulty
or unreachable model never fails a run. Free of graph code: the `reason` node calls
`decide_with_model`.

Every model call has a deadline (`[model] timeout_s`, default 30 s, retries included):
the call runs in a daemon thread, and a model that has not answered by then is left
behind and the fallback is used, marked `fallback:timeout`. A model that raises an
interrupt (LangGraph's GraphInterrupt) cannot pause the run: it is a `model_error`.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from pydantic import BaseModel, Field, ValidationError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)
from tenacity.wait import wait_base

from agent.models import model_label, wrap_evidence
from tools import actions
from tools.config import DEFAULT_MODEL_TIMEOUT_S
from tools.contract import (
    ACTION_NAMES,
    AnomalyRecord,
    Decision,
    IncidentKind,
    ProcessorInfo,
    RecentChange,
    Segment,
)
from tools.guardrails.changes import same_change
from tools.identifiers import resolve_identifier

log = logging.getLogger(__name__)

PROMPT_PATH = Path(__file__).resolve().parent.parent / "prompts" / "reason.md"

MAX_ATTEMPTS = 3
# Small waits: a run is interactive, and the fallback is always available.
DEFAULT_WAIT: wait_base = wait_exponential(multiplier=0.5, min=0.5, max=4.0)

T = TypeVar("T")

FallbackReason = Literal[
    "model_error", "timeout", "unparseable", "outside_catalogue", "invalid_params", "out_of_bounds"
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
def _prompt_template() -> str:
    return PROMPT_PATH.read_text(encoding="utf-8")


def system_prompt() -> str:
    """The system prompt of the reasoning call: prompts/reason.md (read once) with the
    action catalogue's table in its `{action_catalogue}` place."""
    return _prompt_template().format(action_catalogue=actions.table())


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


def _evidence_identifiers(evidence: ReasoningEvidence) -> dict[str, set[str]]:
    """What the evidence names: the values of each dimension (processors also from the
    context), and the fraud rules (`rule`: recent changes' kinds and versions)."""
    segments: list[Segment] = [*evidence.root_cause]
    segments += [a.segment for a in evidence.anomalies]
    segments += [c.target for c in evidence.recent_changes]
    known: dict[str, set[str]] = {"processor": set(evidence.processors)}
    known["rule"] = {n for c in evidence.recent_changes for n in (c.kind, c.version) if n}
    for candidate in evidence.candidates:
        segments.append(candidate.decision.target_segment())
        params = candidate.decision.params
        for key, names in actions.named(actions.get(candidate.decision.action)).items():
            if names.what != "segment" and isinstance(params.get(key), str):
                known.setdefault(names.what, set()).add(params[key])
    for segment in segments:
        for dim, value in segment.items():
            known.setdefault(dim, set()).add(value)
    return known


def _resolve(known: set[str], value: str, what: str) -> str:
    """The evidence's spelling of `value`, or _Rejected: a model cannot name a new thing."""
    match = resolve_identifier(value, known)
    if match is None:
        raise _Rejected("out_of_bounds", f"{what} {value[:80]!r} is not in the evidence")
    return match


def _resolve_segment(known: dict[str, set[str]], segment: Segment) -> Segment:
    dimensions = {d for d in known if d != "rule"}
    out: Segment = {}
    for dim, value in segment.items():
        name = _resolve(dimensions, dim, "dimension")
        out[name] = _resolve(known[name], value, f"segment {name}=")
    return out


def _in_evidence(decision: Decision, evidence: ReasoningEvidence) -> Decision:
    """`decision` with every identifier in the evidence's own spelling (ACQ_B -> acq_b).

    Rejects (out_of_bounds) a segment, processor, merchant, rule or change the evidence
    does not name, by meaning: a look-alike spelling names nothing the evidence has. What
    a parameter names is its type's (`tools.fields.Names`, read by `actions.named`).
    """
    known = _evidence_identifiers(evidence)
    params = dict(decision.params)
    for key, names in actions.named(actions.get(decision.action)).items():
        value = params.get(key)
        if names.what == "change" and value is not None:
            change = RecentChange.model_validate(value)
            match = next((c for c in evidence.recent_changes if same_change(change, c)), None)
            if match is None:
                what = f"{decision.action} names a change not in the evidence"
                raise _Rejected("out_of_bounds", what)
            params[key] = match.model_dump(mode="json")
        elif names.what == "segment" and isinstance(value, dict):
            params[key] = _resolve_segment(known, value)
        elif isinstance(value, str):
            params[key] = _resolve(known.get(names.what, set()), value, key)
    return Decision.model_validate({**decision.model_dump(), "params": params})


def _to_decision(result: Any, label: str, evidence: ReasoningEvidence) -> Decision:
    """The model's structured answer as a Decision, or _Rejected saying why not."""
    raw = result.get("raw") if isinstance(result, dict) else None
    calls = getattr(raw, "tool_calls", None) or []
    if len(calls) > 1:
        raise _Rejected("unparseable", f"{len(calls)} decisions in one answer; one is allowed")
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
            risk=actions.get(parsed.action).risk,
            reasoner=f"model:{label}",
            rationale=parsed.rationale,  # the contract strips control characters and bounds it
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or parsed.action
        raise _Rejected("invalid_params", f"{parsed.action}: {where}: {first['msg']}") from None
    return _in_evidence(decision, evidence)


def _fallback(fallback: Decision, why: FallbackReason, detail: str) -> Decision:
    log.warning("model answer not used (%s): %s", why, detail)
    note = f"model answer not used ({why}): {detail}"[:300]
    rationale = f"{fallback.rationale} [{note}]" if fallback.rationale else f"[{note}]"
    return Decision.model_validate(
        {**fallback.model_dump(), "reasoner": f"fallback:{why}", "rationale": rationale}
    )


class ModelTimeout(Exception):
    """The model did not answer within its deadline."""


def call_with_deadline(call: Callable[[], T], timeout_s: float) -> T:
    """`call()`'s result, or ModelTimeout when it has not returned within `timeout_s`.

    The call runs in a daemon thread with a copy of the caller's context (LangGraph's
    config travels in a context variable). A thread that is still running at the deadline
    is left behind: Python cannot stop it, and being a daemon it never holds up the
    process's exit. Whatever the call raises is raised here.
    """
    done = threading.Event()
    outcome: list[Any] = []
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome.append((True, context.run(call)))
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="payops-model-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise ModelTimeout(f"no answer within {timeout_s:g} s")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def decide_with_model(
    model: BaseChatModel,
    evidence: ReasoningEvidence,
    fallback: Decision,
    *,
    wait: wait_base = DEFAULT_WAIT,
    config: RunnableConfig | None = None,
    timeout_s: float = DEFAULT_MODEL_TIMEOUT_S,
) -> Decision:
    """Ask `model` to choose a remedy for `evidence`; return it, or `fallback` if unusable.

    The call, transient-error retries included (3 attempts, exponential `wait`; pass
    `wait_none()` in tests), must finish within `timeout_s`, else `fallback:timeout`. The
    answer is used only when it is one decision that parses, names a catalogue action
    with valid params and a confidence in [0, 1], and names only segments, processors,
    merchants, rules and changes the evidence has (by meaning; they are rewritten in the
    evidence's spelling). It then gets `reasoner="model:<label>"` and the catalogue's
    default risk. Otherwise `fallback` is returned with `reasoner="fallback:<why>"` and
    the reason appended to its rationale. Never raises because of the model: an error,
    a hang and an interrupt raised inside the model all end in the fallback. `config` is
    passed to the model call (callbacks, tracing).
    """
    label = model_label(model)
    messages = build_messages(evidence)
    try:
        structured = model.with_structured_output(DecisionProposal, include_raw=True)
        retrying = Retrying(
            stop=stop_after_attempt(MAX_ATTEMPTS) | stop_after_delay(timeout_s),
            wait=wait,
            retry=retry_if_exception(is_transient_error),
            reraise=True,
        )
        result = call_with_deadline(
            lambda: retrying(structured.invoke, messages, config), timeout_s
        )
    except ModelTimeout as exc:
        return _fallback(fallback, "timeout", str(exc))
    except GraphBubbleUp as exc:  # a model cannot pause the run for a human
        return _fallback(fallback, "model_error", f"the model raised {type(exc).__name__}")
    except Exception as exc:  # a model may fail in any way; the fallback is always valid
        return _fallback(fallback, "model_error", f"{type(exc).__name__}: {exc}"[:200])
    try:
        return _to_decision(result, label, evidence)
    except _Rejected as rejected:
        return _fallback(fallback, rejected.why, rejected.detail)
