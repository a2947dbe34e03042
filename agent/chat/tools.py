"""The chat's tools: read-only investigation over observe's functions, and one proposal.

Each tool is declared once (`TOOLS`): a name, a description the model reads, typed
arguments (a pydantic model) and a function. The functions are thin: every metric comes
from the functions observe uses (`build_leaf_cube`, `breakdown`, `code_mix`, `WindowStats`,
`observe`, `snapshot`, `simulate`, guard's `evaluate`, the ledger and the learning store).

Arguments are normalised at this boundary: dimension names and values are matched to the
data's spelling (`br` is `BR`), windows are read by `agent.chat.windows`. Bad arguments
raise `ToolInputError`, whose message goes back to the model so it can correct the call.

Only `propose_action` may lead to an effect, and only through guard and a human: a
blocked proposal returns its violations; an allowed one pauses the graph (a LangGraph
interrupt) until a person answers, and an approved one is executed by the loop's act path
(`agent.acting.act`), exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import ToolRuntime
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent import acting
from agent.chat.budget import fit
from agent.chat.context import ChatContext, Investigation
from agent.chat.state import ChatState
from agent.chat.windows import WINDOW_GRAMMAR, resolve_window, window_text
from agent.reasoning import classify
from agent.state import Approval, ApprovalRequest
from tools import actions
from tools.contract import (
    ACTION_NAMES,
    INCIDENT_KINDS,
    Decision,
    Segment,
    TimeWindow,
    iso,
)
from tools.decline_codes import code_class
from tools.guardrails import GuardVerdict
from tools.learning import LearnedOutcome
from tools.metrics import (
    SegmentMetrics,
    SegmentTable,
    WindowStats,
    breakdown,
    code_mix,
    mix_rate_split,
    timeline,
)
from tools.observe import Observation, WindowSummary, code_shares
from tools.root_cause import SPARED_LOG_ODDS, spared_log_odds
from tools.signals import registry as signals
from tools.signals.base import Signal
from tools.signals.names import SUCCESS_RATE
from tools.simulator import simulate
from tools.stats import rate_change_point

# Buckets a timeline aims for at most, and the bucket lengths it chooses from (minutes).
TIMELINE_MAX_BUCKETS = 48
BUCKET_CHOICES = (1, 2, 5, 10, 15, 30, 60, 120, 240, 720, 1440)
MAX_CODES = 15
MAX_ANOMALIES = 10
MAX_CHILDREN = 25


class ToolInputError(ValueError):
    """Arguments a tool cannot use; the message tells the model what would work."""


@dataclass(frozen=True)
class ToolEnv:
    """What a tool call reads: run settings, the investigation, and its thread."""

    ctx: ChatContext
    inv: Investigation
    thread_id: str


def _in_pp(x: float) -> float:
    """A difference of rates (fractions) in percentage points, as results carry it."""
    return round(x * 100, 2)


def _r(x: float) -> float:
    return round(x, 6)


# ---------------------------------------------------------------------------------------
# Arguments: one pydantic model per tool (the schema the model reads).

SegmentField: Any = Field(
    default_factory=dict,
    description=(
        "segment as {dimension: value}, e.g. {'processor': 'acq_a', 'issuer_country': 'BR'};"
        " {} is all traffic"
    ),
)
_WINDOW_HELP = f"time window: {WINDOW_GRAMMAR}"


class _Args(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FindAnomaliesArgs(_Args):
    """Arguments of find_anomalies."""

    baseline: str | None = Field(default=None, description=f"baseline {_WINDOW_HELP}")
    current: str | None = Field(default=None, description=f"current {_WINDOW_HELP}")


class SegmentMetricsArgs(_Args):
    """Arguments of segment_metrics."""

    segment: Segment = SegmentField
    window: str = Field(default="current", description=_WINDOW_HELP)


class TwoWindowArgs(_Args):
    """A segment compared over two windows (default: observe's baseline and current)."""

    segment: Segment = SegmentField
    baseline: str = Field(default="baseline", description=f"earlier {_WINDOW_HELP}")
    current: str = Field(default="current", description=f"later {_WINDOW_HELP}")


class DrillDownArgs(TwoWindowArgs):
    """Arguments of drill_down."""

    dimension: str = Field(description="dimension to split along, e.g. 'processor'")


class TimelineArgs(_Args):
    """Arguments of timeline."""

    segment: Segment = SegmentField
    bucket_minutes: int | None = Field(
        default=None, ge=1, le=1440, description="bucket length in minutes (default: automatic)"
    )
    window: str | None = Field(
        default=None, description=f"{_WINDOW_HELP} (default: baseline start to current end)"
    )


class MixVsRateArgs(TwoWindowArgs):
    """Arguments of mix_vs_rate."""

    dimension: str | None = Field(
        default=None, description="one dimension to split along (default: every dimension)"
    )


class RecentChangesArgs(_Args):
    """Arguments of recent_changes."""

    segment: Segment = SegmentField


class RecentActionsArgs(_Args):
    """Arguments of recent_actions."""

    limit: int = Field(default=10, ge=1, le=50, description="how many ledger entries")


class ExplainDecisionArgs(_Args):
    """Arguments of explain_decision."""

    thread: str | None = Field(
        default=None, description="thread id of a `payops run` (default: the latest run)"
    )


class LearningHistoryArgs(_Args):
    """Arguments of learning_history."""

    incident_kind: str | None = Field(default=None, description="an incident kind")
    action: str | None = Field(default=None, description="an action name")


class ActionArgs(_Args):
    """An action of the catalogue with its parameters."""

    action: str = Field(description=f"one of {', '.join(ACTION_NAMES)}")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "the action's parameters (CONTRACT §4), e.g. shift_traffic: {segment, "
            "from_processor, to_processor, percent}"
        ),
    )


class ProposeActionArgs(ActionArgs):
    """Arguments of propose_action."""

    reason: str = Field(default="", description="why, in one sentence (shown to the approver)")


# ---------------------------------------------------------------------------------------
# Normalising arguments.


KNOWN_SHOWN = 12


def _value(inv: Investigation, dimension: str, value: str) -> str:
    """The data's spelling of `value`; a value the data lacks is refused with what exists
    (a look-alike such as a Cyrillic "а" is not the Latin "a")."""
    vocab = inv.vocabulary()
    found = vocab.canonical(dimension, value)
    if found not in vocab.values.get(dimension, {}):
        known = list(vocab.values.get(dimension, {}))
        shown = ", ".join(known[:KNOWN_SHOWN]) + (", ..." if len(known) > KNOWN_SHOWN else "")
        raise ToolInputError(f"no {dimension} {value!r} in the data; it has: {shown}")
    return found


def _segment(inv: Investigation, segment: Segment) -> Segment:
    vocab = inv.vocabulary()
    out: Segment = {}
    for dim, value in segment.items():
        name = vocab.canonical_dimension(str(dim))
        if name is None:
            raise ToolInputError(
                f"unknown dimension {dim!r}; the data's dimensions are "
                f"{', '.join(vocab.dimensions)}"
            )
        out[name] = _value(inv, name, str(value))
    return out


def _dimension(inv: Investigation, name: str) -> str:
    found = inv.vocabulary().canonical_dimension(name)
    if found is None:
        raise ToolInputError(
            f"unknown dimension {name!r}; the data's dimensions are "
            f"{', '.join(inv.vocabulary().dimensions)}"
        )
    return found


def _window(inv: Investigation, spec: str | None) -> TimeWindow:
    try:
        return resolve_window(spec, inv.baseline, inv.current)
    except ValueError as exc:
        raise ToolInputError(str(exc)) from None


def _pair(inv: Investigation, baseline: str | None, current: str | None) -> tuple[TimeWindow, ...]:
    b, c = _window(inv, baseline or "baseline"), _window(inv, current or "current")
    if b.end > c.start:
        raise ToolInputError(
            f"the baseline {window_text(b)} must end before the current window "
            f"{window_text(c)} starts"
        )
    return b, c


# ---------------------------------------------------------------------------------------
# Result pieces.


def _rate(before: float, after: float) -> dict[str, float]:
    return {"baseline": _r(before), "current": _r(after), "change_pp": _in_pp(after - before)}


def _summary(w: WindowStats) -> dict[str, Any]:
    # The approved-only p95 needs a query of its own; the tools report every attempt's.
    return WindowSummary.of(w, 0.0).model_dump(exclude={"approved_latency_p95"})


def _success_rate(inv: Investigation, b: TimeWindow, c: TimeWindow) -> Signal:
    """Observe's success-rate signal, for segments measured in windows `b` and `c`."""
    table = SegmentTable(list(inv.dataset.dimensions), 1, b, c, {})
    return signals.get(SUCCESS_RATE).bind(table, inv.config)[0]


def _lost(signal: Signal, m: SegmentMetrics) -> float:
    """Approvals lost: failures above what the baseline success rate predicts."""
    return round(signal.excess(signal.counts(m)), 1)


def _affected(signal: Signal, m: SegmentMetrics, parent: SegmentMetrics | None) -> bool:
    """Whether a segment carries the failing traffic, by observe's own tests.

    Affected when its own success-rate drop is significant and material, or, inside a
    parent whose drop is material, when root-cause localization's test calls it hit like
    the parent rather than spared (odds of 5:1). Too few attempts to tell either way is
    not affected.
    """
    c = signal.counts(m)
    if signal.enough_sample(c) and signal.material(c) and signal.p_value(c) <= signal.cfg.fdr:
        return True
    if parent is None:
        return False
    whole = signal.counts(parent)
    if not signal.material(whole):
        return False
    return spared_log_odds(signal, whole, c) <= -SPARED_LOG_ODDS


def _segment_row(
    signal: Signal, m: SegmentMetrics, parent: SegmentMetrics | None
) -> dict[str, Any]:
    return {
        "segment": m.segment,
        "attempts": {"baseline": m.baseline.attempts, "current": m.current.attempts},
        "success_rate": _rate(m.baseline.success_rate, m.current.success_rate),
        "approvals_lost": _lost(signal, m),
        "affected": _affected(signal, m, parent),
    }


def _one(inv: Investigation, b: TimeWindow, c: TimeWindow, segment: Segment) -> SegmentMetrics:
    dims = inv.dataset.dimensions
    found = inv.with_cube(b, c, lambda conn, cube: breakdown(conn, dims, segment, cube=cube))
    return next(iter(found.values()))


def _windows_of(b: TimeWindow, c: TimeWindow) -> dict[str, str]:
    return {"baseline": window_text(b), "current": window_text(c)}


# ---------------------------------------------------------------------------------------
# The read-only tools.

_EXCESS_OF = {
    "success_rate": "approvals lost against the baseline rate",
    "volume": "attempts missing against the baseline pace",
    "latency_p95": "attempts slower than the baseline p95",
}


def _incidents(inv: Investigation, obs: Observation) -> list[dict[str, Any]]:
    out = []
    for rc, ev in zip(obs.root_causes, obs.evidence, strict=True):
        # The classifier reads the primary root cause: give it each one in turn.
        one = obs.model_copy(
            update={"root_causes": [rc], "evidence": [ev], "root_cause": [rc.segment]}
        )
        top = classify(one, inv.scenario_context)[0]
        b, c = ev.baseline, ev.current
        out.append(
            {
                "segment": rc.segment,
                "incident_kind": top.incident_kind,
                "confidence": top.confidence,
                "metric": rc.metric,
                "explained_share": rc.explained_share,
                "excess": {"value": rc.excess, "of": _EXCESS_OF.get(rc.metric, rc.metric)},
                "attempts": {"baseline": b.attempts, "current": c.attempts},
                "success_rate": _rate(b.success_rate, c.success_rate),
                "error_rate": _rate(b.error_rate, c.error_rate),
                "latency_p95_ms": {"baseline": b.latency_p95, "current": c.latency_p95},
                "codes_moved": [
                    {
                        "code": s.code,
                        "class": code_class(s.code),
                        "baseline_share": s.baseline_share,
                        "current_share": s.current_share,
                        "change_pp": _in_pp(s.current_share - s.baseline_share),
                    }
                    for s in ev.code_shifts
                ],
            }
        )
    return out


def find_anomalies(env: ToolEnv, args: FindAnomaliesArgs) -> dict[str, Any]:
    """What observe found, ranked, with each root cause, its incident kind and evidence."""
    inv = env.inv
    b = _window(inv, args.baseline) if args.baseline else inv.baseline
    c = _window(inv, args.current) if args.current else inv.current
    obs = inv.observation(b, c)
    overall = obs.overall
    return {
        "scenario": inv.scenario_id,
        "windows": _windows_of(obs.baseline, obs.current),
        "anomalous": obs.anomalous,
        "incidents": _incidents(inv, obs),
        "anomalies": [
            {
                "segment": a.segment,
                "metric": a.metric,
                "baseline": a.baseline,
                "current": a.current,
                "p_value": a.p_value,
                "severity": a.severity,
            }
            for a in obs.anomalies[:MAX_ANOMALIES]
        ],
        "anomalies_total": len(obs.anomalies),
        "overall": None
        if overall is None
        else {
            "attempts": {
                "baseline": overall.baseline.attempts,
                "current": overall.current.attempts,
            },
            "success_rate": _rate(overall.baseline.success_rate, overall.current.success_rate),
        },
        "segment_tests": obs.tests,
    }


def segment_metrics(env: ToolEnv, args: SegmentMetricsArgs) -> dict[str, Any]:
    """Every metric observe computes, for one segment in one window."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    window = _window(inv, args.window)
    # A cube built over the same window twice holds every attempt in `current`.
    m = _one(inv, window, window, segment).current
    return {
        "segment": segment,
        "window": window_text(window),
        "metrics": _summary(m),
        "attempts_per_minute": round(m.attempts / window.minutes, 2),
    }


def compare_windows(env: ToolEnv, args: TwoWindowArgs) -> dict[str, Any]:
    """One segment's metrics in two windows, what changed, and whether the drop is real."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    b, c = _pair(inv, args.baseline, args.current)
    m = _one(inv, b, c, segment)
    signal = _success_rate(inv, b, c)
    return {
        "segment": segment,
        "windows": _windows_of(b, c),
        "baseline": _summary(m.baseline),
        "current": _summary(m.current),
        "change": {
            "success_rate_pp": _in_pp(m.current.success_rate - m.baseline.success_rate),
            "error_rate_pp": _in_pp(m.current.error_rate - m.baseline.error_rate),
            "latency_p95_ms": round(m.current.latency_p95 - m.baseline.latency_p95, 1),
            "attempts_per_minute": {
                "baseline": round(m.baseline.attempts / b.minutes, 2),
                "current": round(m.current.attempts / c.minutes, 2),
            },
        },
        "success_rate_drop_p_value": float(f"{signal.p_value(signal.counts(m)):.3g}"),
        "approvals_lost": _lost(signal, m),
    }


def drill_down(env: ToolEnv, args: DrillDownArgs) -> dict[str, Any]:
    """The children of a segment along one dimension, ranked by approvals lost."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    dim = _dimension(inv, args.dimension)
    b, c = _pair(inv, args.baseline, args.current)
    # Splitting a segment along a dimension it fixes means: its siblings along that one.
    parent = {k: v for k, v in segment.items() if k != dim}
    dims = inv.dataset.dimensions

    def query(conn: Any, cube: str) -> tuple[SegmentMetrics, list[SegmentMetrics]]:
        whole = next(iter(breakdown(conn, dims, parent, cube=cube).values()))
        return whole, list(breakdown(conn, dims, parent, [dim], cube=cube).values())

    whole, children = inv.with_cube(b, c, query)
    signal = _success_rate(inv, b, c)
    rows = []
    for child in children:
        row = _segment_row(signal, child, whole)
        row["value"] = child.segment[dim]
        rows.append(row)
    rows.sort(key=lambda r: (-r["approvals_lost"], -r["attempts"]["current"], r["value"]))
    total_lost = sum(max(r["approvals_lost"], 0.0) for r in rows)
    for r in rows:
        share = max(r["approvals_lost"], 0.0) / total_lost if total_lost > 0 else 0.0
        r["share_of_lost"] = round(share, 4)
    return {
        "segment": parent,
        "dimension": dim,
        "windows": _windows_of(b, c),
        "total": _segment_row(signal, whole, None),
        "children": rows[:MAX_CHILDREN],
        "children_total": len(rows),
    }


def _bucket_minutes(window: TimeWindow) -> int:
    for minutes in BUCKET_CHOICES:
        if window.minutes / minutes <= TIMELINE_MAX_BUCKETS:
            return minutes
    return BUCKET_CHOICES[-1]


def _onset(
    buckets: list[dict[str, Any]], counts: list[tuple[float, float]], min_drop: float
) -> dict[str, Any] | None:
    split = rate_change_point(counts)
    if split is None:
        return None
    n0 = sum(n for n, _ in counts[:split])
    x0 = sum(x for _, x in counts[:split])
    n1 = sum(n for n, _ in counts[split:])
    x1 = sum(x for _, x in counts[split:])
    before, after = 1 - x0 / n0, 1 - x1 / n1
    if before - after < min_drop:
        return None
    return {"start": buckets[split]["start"], "before": _r(before), "after": _r(after)}


def timeline_tool(env: ToolEnv, args: TimelineArgs) -> dict[str, Any]:
    """Success rate and volume of a segment per time bucket, and when a drop began."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    if args.window:
        window = _window(inv, args.window)
    else:
        window = TimeWindow(start=inv.baseline.start, end=inv.current.end)
    minutes = args.bucket_minutes or _bucket_minutes(window)
    if window.minutes / minutes > 4 * TIMELINE_MAX_BUCKETS:
        raise ToolInputError(
            f"{int(window.minutes / minutes)} buckets of {minutes} min; use longer buckets "
            "or a shorter window"
        )
    with inv.cursor() as ds:
        found = timeline(ds.conn, ds.table, segment, window, minutes)
    buckets = [
        {
            "start": iso(t.start),
            "attempts": t.attempts,
            "success_rate": _r(t.success_rate),
            "errors": t.errors,
            "share_of_traffic": _r(t.attempts / t.all_attempts if t.all_attempts else 0.0),
        }
        for t in found
    ]
    rate_onset = _onset(
        buckets,
        [(t.attempts, t.attempts - t.approved) for t in found],
        inv.config.min_effect_pp / 100,
    )
    # Volume: the segment's share of all traffic steps down (a rate of "not in segment").
    share = _onset(
        buckets,
        [(t.all_attempts, t.all_attempts - t.attempts) for t in found],
        0.0,
    )
    volume_onset = None
    if share is not None and share["after"] <= (1 - inv.config.volume_min_drop) * share["before"]:
        volume_onset = {
            "start": share["start"],
            "share_before": share["before"],
            "share_after": share["after"],
        }
    return {
        "segment": segment,
        "window": window_text(window),
        "bucket_minutes": minutes,
        "buckets": buckets,
        "success_rate_onset": rate_onset,
        "volume_onset": volume_onset,
    }


def decline_codes(env: ToolEnv, args: TwoWindowArgs) -> dict[str, Any]:
    """The top failure codes of a segment, their class, and how their shares moved."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    b, c = _pair(inv, args.baseline, args.current)
    dims = inv.dataset.dimensions

    def query(conn: Any, cube: str) -> tuple[SegmentMetrics, Any]:
        m = next(iter(breakdown(conn, dims, segment, cube=cube).values()))
        return m, code_mix(conn, [segment], cube=cube)[0]

    m, mix = inv.with_cube(b, c, query)
    shares = code_shares(m.baseline, m.current, mix)
    return {
        "segment": segment,
        "windows": _windows_of(b, c),
        "attempts": {"baseline": m.baseline.attempts, "current": m.current.attempts},
        "codes": [
            {
                "code": s.code,
                "class": code_class(s.code),
                "baseline_share": s.baseline_share,
                "current_share": s.current_share,
                "change_pp": _in_pp(s.current_share - s.baseline_share),
                "baseline_count": s.baseline_count,
                "current_count": s.current_count,
            }
            for s in shares[:MAX_CODES]
        ],
        "codes_total": len(shares),
    }


def latency(env: ToolEnv, args: TwoWindowArgs) -> dict[str, Any]:
    """Latency p50/p95/p99 of a segment in both windows and their shift."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    b, c = _pair(inv, args.baseline, args.current)
    m = _one(inv, b, c, segment)
    out: dict[str, Any] = {"segment": segment, "windows": _windows_of(b, c)}
    for q in ("p50", "p95", "p99"):
        before = round(getattr(m.baseline, f"latency_{q}"), 1)
        after = round(getattr(m.current, f"latency_{q}"), 1)
        out[q] = {
            "baseline_ms": before,
            "current_ms": after,
            "change_ms": round(after - before, 1),
            "ratio": round(after / before, 2) if before > 0 else None,
        }
    out["attempts"] = {"baseline": m.baseline.attempts, "current": m.current.attempts}
    return out


def mix_vs_rate(env: ToolEnv, args: MixVsRateArgs) -> dict[str, Any]:
    """How much of a success-rate change is traffic mix, how much rates within sub-segments."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    b, c = _pair(inv, args.baseline, args.current)
    dims = inv.dataset.dimensions
    along = (
        [_dimension(inv, args.dimension)]
        if args.dimension
        else [d for d in dims if d not in segment]
    )

    def query(conn: Any, cube: str) -> tuple[SegmentMetrics, dict[str, list[SegmentMetrics]]]:
        whole = next(iter(breakdown(conn, dims, segment, cube=cube).values()))
        parts = {d: list(breakdown(conn, dims, segment, [d], cube=cube).values()) for d in along}
        return whole, parts

    whole, parts = inv.with_cube(b, c, query)
    rows: list[dict[str, Any]] = []
    for dim, children in parts.items():
        split = mix_rate_split(whole, children)
        top = sorted(split.parts, key=lambda p: (-abs(p[1]), dict(p[0]).get(dim, "")))[:3]
        rows.append(
            {
                "dimension": dim,
                "mix_pp": _in_pp(split.mix),
                "rate_pp": _in_pp(split.rate),
                "largest_mix_moves": [
                    {"value": dict(k)[dim], "mix_pp": _in_pp(mix), "rate_pp": _in_pp(rate)}
                    for k, mix, rate in top
                ],
            }
        )
    rows.sort(key=lambda r: (-abs(r["mix_pp"]), r["dimension"]))
    return {
        "segment": segment,
        "windows": _windows_of(b, c),
        "success_rate": _rate(whole.baseline.success_rate, whole.current.success_rate),
        "by_dimension": rows,
    }


def recent_changes(env: ToolEnv, args: RecentChangesArgs) -> dict[str, Any]:
    """Configuration and rule changes recorded with the data, newest first."""
    inv = env.inv
    segment = _segment(inv, args.segment)
    start = inv.current.start
    changes = [
        ch
        for ch in inv.scenario_context.recent_changes
        if all(ch.target.get(k, v) == v for k, v in segment.items())
    ]
    changes.sort(key=lambda ch: ch.ts, reverse=True)
    return {
        "current_window": window_text(inv.current),
        "changes": [
            {
                "ts": iso(ch.ts),
                "kind": ch.kind,
                "target": ch.target,
                "version": ch.version,
                "minutes_before_current_window": round((start - ch.ts).total_seconds() / 60, 1),
            }
            for ch in changes
        ],
    }


def recent_actions(env: ToolEnv, args: RecentActionsArgs) -> dict[str, Any]:
    """Actions recorded with the data, and the actions payops executed (its ledger)."""
    inv = env.inv
    with env.ctx.ledger() as ledger:
        entries = ledger.recent(args.limit)
    return {
        "recorded_with_data": [
            {"ts": iso(a.ts), "action": a.action, "params": a.params}
            for a in inv.scenario_context.recent_actions
        ],
        "executed_by_payops": [
            {
                "claimed_at": iso(e.claimed_at),
                "action": e.action,
                "params": e.params,
                "status": e.status,
                "outcome": e.outcome,
                "scenario": e.scenario_id,
                "same_data": e.scenario_id == inv.scenario_id,
                "thread": e.thread_id,
                "idempotency_key": e.idempotency_key[:16],
            }
            for e in entries
        ],
    }


def explain_decision(env: ToolEnv, args: ExplainDecisionArgs) -> dict[str, Any]:
    """The last loop run's hypotheses, decision, rationale and guard verdict."""
    from agent.graph import compile_graph
    from agent.state import AgentState

    saver = env.ctx.checkpointer
    if saver is None:
        raise ToolInputError("no checkpoint store is open: loop runs cannot be read")
    thread = args.thread
    if thread is None:
        # Newest checkpoint first, across threads; a loop run's state holds a decision.
        for found in saver.list(None, limit=500):
            if "decision" in found.checkpoint.get("channel_values", {}):
                thread = str(found.config["configurable"]["thread_id"])
                break
    if thread is None:
        return {"found": False, "note": "no `payops run` has been recorded in this state folder"}
    snapshot = compile_graph(saver).get_state({"configurable": {"thread_id": thread}})
    if not snapshot.values or "decision" not in snapshot.values:
        raise ToolInputError(f"no loop run with thread id {thread!r}")
    state = AgentState.model_validate(snapshot.values)
    decision, guard = state.decision, state.guard
    verdict = "needs_approval" if snapshot.interrupts else state.verdict
    return {
        "found": True,
        "thread": thread,
        "scenario": state.scenario_id,
        "incident_kind": state.incident_kind,
        "hypotheses": [h.model_dump(mode="json") for h in state.hypotheses[:3]],
        "decision": None if decision is None else decision.model_dump(mode="json"),
        "guard": None if guard is None else guard.model_dump(mode="json"),
        "verdict": verdict,
        "violations": [v.model_dump() for v in state.violations],
        "outcome": None if state.outcome is None else state.outcome.model_dump(mode="json"),
    }


def learning_history(env: ToolEnv, args: LearningHistoryArgs) -> dict[str, Any]:
    """Past outcomes per incident kind and action, and the ranking adjustment they give."""
    if args.incident_kind and args.incident_kind not in INCIDENT_KINDS:
        raise ToolInputError(f"unknown incident kind; one of {', '.join(INCIDENT_KINDS)}")
    if args.action and args.action not in ACTION_NAMES:
        raise ToolInputError(f"unknown action; one of {', '.join(ACTION_NAMES)}")
    with env.ctx.learning_store() as store:
        stats = store.stats("kind_action")
        learned = store.learning_context()
    rows = [
        s
        for s in stats
        if (args.incident_kind in (None, s.incident_kind)) and (args.action in (None, s.action))
    ]
    return {
        "rows": [
            {
                "incident_kind": s.incident_kind,
                "action": s.action,
                "decisions": s.count,
                "executed": s.executed,
                "success_rate": s.success_rate,
                "mean_improvement_pp": None
                if s.mean_improvement is None
                else _in_pp(s.mean_improvement),
                "ranking_adjustment_pp": _in_pp(
                    learned.adjustment(str(s.incident_kind), str(s.action))
                ),
            }
            for s in rows
        ]
    }


# ---------------------------------------------------------------------------------------
# simulate and propose_action: one decision, checked by guard.


def _decision(env: ToolEnv, args: ActionArgs, obs: Observation, rationale: str) -> Decision:
    """The proposal as a validated Decision, names matched to the data's spelling."""
    inv = env.inv
    if args.action not in ACTION_NAMES:
        raise ToolInputError(f"unknown action {args.action!r}; one of {', '.join(ACTION_NAMES)}")
    params = dict(args.params)
    # Parameters that name a segment or a dimension's value (a processor, a merchant) are
    # matched to the data's spelling, and refused when the data has no such value.
    for key, names in actions.named(actions.get(args.action)).items():
        value = params.get(key)
        if names.what == "segment" and isinstance(value, dict):
            params[key] = _segment(inv, value)
        elif names.dimension is not None and isinstance(value, str):
            params[key] = _value(inv, names.dimension, value)
    # The proposal acts on the incident observe found: its confidence is the classifier's.
    confidence = classify(obs, inv.scenario_context)[0].confidence
    from agent.models import model_label

    label = model_label(env.ctx.chat_model(inv))
    try:
        return Decision(
            action=args.action,
            params=params,
            confidence=confidence,
            reasoner=f"chat:{label}",
            rationale=rationale[:600],
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or args.action
        raise ToolInputError(f"{args.action}: {where}: {first['msg']}") from None


def _verdict_dict(verdict: Any) -> dict[str, Any]:
    return {
        "status": verdict.status,
        "risk": verdict.risk,
        "violations": [v.model_dump() for v in verdict.violations],
        "reasons_for_approval": verdict.reasons_for_approval,
    }


def _check(env: ToolEnv, decision: Decision, obs: Observation) -> GuardVerdict:
    """Guard's verdict on `decision`, as the loop's guard node gives it (ledger included)."""
    with env.inv.cursor() as ds:
        return acting.check(env.ctx, acting.Proposal(decision, ds, obs, env.thread_id))


def simulate_tool(env: ToolEnv, args: ActionArgs) -> dict[str, Any]:
    """A dry run: the simulator's estimate of an action and guard's verdict on it."""
    inv = env.inv
    obs = inv.observation()
    decision = _decision(env, args, obs, "dry run from chat")
    snap = inv.snapshot(decision.target_segment())
    outcome = simulate(decision, snap, inv.scenario_context)
    verdict = _check(env, decision, obs)
    return {
        "dry_run": True,
        "decision": {"action": decision.action, "params": decision.params},
        "estimate": outcome.model_dump(mode="json"),
        "guard": _verdict_dict(verdict),
    }


def propose_action(env: ToolEnv, args: ProposeActionArgs) -> dict[str, Any]:
    """Propose an action: guard checks it; a person approves it before it is executed."""
    inv = env.inv
    obs = inv.observation()
    decision = _decision(env, args, obs, args.reason or "proposed from chat")
    # On resume this tool runs again from its top: guard is checked again at approval, and
    # once more by `acting.act` when the action is claimed.
    verdict = _check(env, decision, obs)
    proposal = {"action": decision.action, "params": decision.params}
    if verdict.status == "blocked":
        return {"status": "blocked", "decision": proposal, "guard": _verdict_dict(verdict)}
    top = classify(obs, inv.scenario_context)[0]
    request = ApprovalRequest(
        scenario_id=inv.scenario_id,
        decision=decision,
        risk=verdict.risk,
        reasons=verdict.reasons_for_approval or ["every action proposed in chat needs a person"],
        incident_kind=top.incident_kind,
        root_cause=obs.root_cause,
    )
    answer = Approval.model_validate(interrupt(request.model_dump(mode="json")))
    if not answer.approved:
        return {
            "status": "rejected",
            "decision": proposal,
            "by": answer.by,
            "reason": answer.reason or "no reason given",
        }
    with inv.cursor() as ds:
        done = acting.act(env.ctx, acting.Proposal(decision, ds, obs, env.thread_id), answer)
    if done.verdict == "blocked":
        return {
            "status": "blocked",
            "decision": proposal,
            "guard": {"status": "blocked", "violations": [v.model_dump() for v in done.violations]},
        }
    if done.outcome is not None and not done.already_executed:
        learned = LearnedOutcome.of(
            decision,
            "executed",
            done.outcome,
            scenario_id=inv.scenario_id,
            thread_id=env.thread_id,
            incident_kind=top.incident_kind,
            idempotency_key=done.idempotency_key,
        )
        with env.ctx.learning_store() as store:
            store.record(learned)
    return {
        "status": "already_executed" if done.already_executed else "executed",
        "decision": proposal,
        "approved_by": answer.by,
        "idempotency_key": done.idempotency_key[:16],
        "outcome": None if done.outcome is None else done.outcome.model_dump(mode="json"),
    }


# ---------------------------------------------------------------------------------------
# The registry, and its LangChain form.


@dataclass(frozen=True)
class ChatTool:
    """One tool: its name, what the model reads about it, its arguments and its function."""

    name: str
    description: str
    args: type[BaseModel]
    run: Callable[[ToolEnv, Any], dict[str, Any]]
    effect: Literal["none", "proposal"] = "none"


TOOLS: tuple[ChatTool, ...] = (
    ChatTool(
        "find_anomalies",
        "What is wrong: observe's anomalies, ranked, with each root-cause segment, its "
        "incident kind, its success rate before and after, and the decline codes that moved. "
        "Start here.",
        FindAnomaliesArgs,
        find_anomalies,
    ),
    ChatTool(
        "segment_metrics",
        "Every metric observe computes (attempts, success/error rates, soft/hard/technical "
        "shares, 3DS, latency p50/p95/p99) for one segment in one window.",
        SegmentMetricsArgs,
        segment_metrics,
    ),
    ChatTool(
        "compare_windows",
        "One segment's metrics in two windows, what changed, and the p-value of the "
        "success-rate drop.",
        TwoWindowArgs,
        compare_windows,
    ),
    ChatTool(
        "drill_down",
        "Split a segment along one dimension (e.g. which processors, countries or networks "
        "carry the failures); children ranked by approvals lost, each marked affected or not.",
        DrillDownArgs,
        drill_down,
    ),
    ChatTool(
        "timeline",
        "Success rate and volume of a segment per time bucket, and when the drop began "
        "(answers 'since when?').",
        TimelineArgs,
        timeline_tool,
    ),
    ChatTool(
        "decline_codes",
        "The top failure codes of a segment, their class (technical, soft, hard, fraud, "
        "authentication) and how their shares moved.",
        TwoWindowArgs,
        decline_codes,
    ),
    ChatTool(
        "latency",
        "Latency p50/p95/p99 of a segment in both windows and their shift.",
        TwoWindowArgs,
        latency,
    ),
    ChatTool(
        "mix_vs_rate",
        "Is it the mix or the rates? Splits a success-rate change into the part from traffic "
        "shifting between sub-segments and the part from rates falling within them.",
        MixVsRateArgs,
        mix_vs_rate,
    ),
    ChatTool(
        "recent_changes",
        "Configuration and rule changes recorded with the data, with how long before the "
        "current window they went live.",
        RecentChangesArgs,
        recent_changes,
    ),
    ChatTool(
        "recent_actions",
        "Actions recorded with the data, and the actions payops itself executed (its ledger).",
        RecentActionsArgs,
        recent_actions,
    ),
    ChatTool(
        "explain_decision",
        "The last `payops run` (or a given thread): hypotheses, the decision and its "
        "rationale, and guard's verdict with every violation.",
        ExplainDecisionArgs,
        explain_decision,
    ),
    ChatTool(
        "learning_history",
        "Past outcomes from the learning store per incident kind and action, and how they "
        "adjust the ranking of remedies.",
        LearningHistoryArgs,
        learning_history,
    ),
    ChatTool(
        "simulate",
        "Dry run of an action: the simulator's estimate of the segment's success rate after "
        "it, and guard's verdict. Executes nothing.",
        ActionArgs,
        simulate_tool,
    ),
    ChatTool(
        "propose_action",
        "Propose an action for execution. Guard checks it; a blocked proposal returns its "
        "violations; an allowed one waits for a person's approval before it is executed.",
        ProposeActionArgs,
        propose_action,
        effect="proposal",
    ),
)
TOOLS_BY_NAME = {t.name: t for t in TOOLS}


def turn_messages(messages: list[AnyMessage]) -> list[AnyMessage]:
    """The messages of the current turn: from the last human message on."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i:]
    return list(messages)


def _canonical_call(name: str, args: dict[str, Any]) -> str:
    return name + json.dumps(args, sort_keys=True, ensure_ascii=False)


def repeated_call(messages: list[AnyMessage], call_id: str) -> str | None:
    """The id of an earlier identical call (same tool, same arguments) in this turn."""
    calls = [c for m in turn_messages(messages) if isinstance(m, AIMessage) for c in m.tool_calls]
    mine = next((c for c in calls if c.get("id") == call_id), None)
    if mine is None:
        return None
    key = _canonical_call(mine["name"], mine["args"])
    for call in calls:
        if call.get("id") == call_id:
            return None
        if _canonical_call(call["name"], call["args"]) == key:
            return str(call.get("id"))
    return None


def _state(runtime: ToolRuntime[ChatContext, Any]) -> ChatState:
    state = runtime.state
    return state if isinstance(state, ChatState) else ChatState.model_validate(state)


def _langchain_tool(spec: ChatTool) -> BaseTool:
    def call(runtime: ToolRuntime[ChatContext, Any], **kwargs: Any) -> tuple[str, dict[str, Any]]:
        ctx = runtime.context
        state = _state(runtime)
        earlier = repeated_call(state.messages, str(runtime.tool_call_id))
        if earlier is not None:
            data = {
                "refused": f"identical to call {earlier} earlier in this turn; use its result "
                "or change the arguments"
            }
            return json.dumps(data), data
        args = spec.args.model_validate(kwargs)
        thread_id = str(runtime.config.get("configurable", {}).get("thread_id", ""))
        env = ToolEnv(ctx, state.investigation(ctx), thread_id)
        data = spec.run(env, args)
        return fit(data, ctx.tool_budget_chars), data

    return StructuredTool.from_function(
        func=call,
        name=spec.name,
        description=spec.description,
        args_schema=spec.args,
        response_format="content_and_artifact",
    )


@cache
def langchain_tools() -> tuple[BaseTool, ...]:
    """Every chat tool as a LangChain tool (what the model is offered and ToolNode runs)."""
    return tuple(_langchain_tool(t) for t in TOOLS)


def tool_results(messages: list[AnyMessage]) -> list[str]:
    """The text of every tool result of the current turn (what an answer may cite)."""
    return [m.text for m in turn_messages(messages) if isinstance(m, ToolMessage)]
