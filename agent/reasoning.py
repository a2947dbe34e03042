"""The deterministic reasoner: classify the incident, rank remedies, pick one.

It reads only evidence observe produced (where the root cause sits, which decline codes
moved, the latency and 3DS signatures, how recent changes line up in time), asks each
registered incident kind (tools/incidents/) whether that evidence is its own, asks the
simulator what each plausible remedy would do and the learning store how such remedies
went before, and drops remedies guard would refuse. A chat model, when configured, chooses
among the same candidates; this reasoner is also its fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.state import IncidentHypothesis, ReasoningEvidence, RemedyCandidate
from tools import actions, incidents
from tools.contract import (
    Decision,
    IncidentKind,
    RecentChange,
    RefusedRemedy,
    ScenarioContext,
    Segment,
    Severity,
    format_segment,
)
from tools.decline_codes import (
    INSUFFICIENT_FUNDS,
    CodeClass,
    canonical_code,
    code_class,
)
from tools.guardrails import HARD_CEILINGS, GuardInput, GuardLimits, evaluate
from tools.guardrails.base import PastAction, is_healthy, segments_overlap
from tools.identifiers import same_identifier
from tools.incidents import CONFIDENCE, QUIET, Recognition, Signature
from tools.learning import LearningContext
from tools.observe import Observation, RootCauseDetail, SegmentEvidence
from tools.routes import SegmentSnapshot
from tools.signals import registry as signals
from tools.simulator import simulate

# Score of a playbook position (the catalogue's order per incident kind, tools/actions/);
# gaps are wider than a typical simulated improvement so the playbook order holds unless
# the simulator or the learning store disagree strongly. The simulator and past outcomes
# re-rank within the playbook; they never add an action it rules out.
PLAYBOOK_PRIOR = (1.0, 0.7, 0.5, 0.3)
# A change counts as a suspect when it went live this long before the current window: the
# oldest change guard lets a rollback undo.
CHANGE_LOOKBACK = timedelta(minutes=HARD_CEILINGS["max_change_age_minutes"])
# How observe's code mix labels a failure without a decline code (tools/metrics.py).
NO_CODE = "(none)"

Snapshotter = Callable[[Segment], SegmentSnapshot]


@dataclass
class Reasoning:
    """What the deterministic reasoner concluded."""

    hypotheses: list[IncidentHypothesis]
    incident_kind: IncidentKind
    candidates: list[RemedyCandidate]
    decision: Decision
    # Remedies of the playbook that guard would refuse, with the rules that refuse them.
    refused: list[RefusedRemedy] = field(default_factory=list)


def suspect_changes(
    obs: Observation, context: ScenarioContext, segment: Segment
) -> list[RecentChange]:
    """Recent changes on (or around) `segment` that went live shortly before the anomaly."""
    start = obs.current.start
    return [
        c
        for c in context.recent_changes
        if start - CHANGE_LOOKBACK <= c.ts <= obs.current.end
        and segments_overlap(c.target, segment)
    ]


def anomaly_start(obs: Observation, context: ScenarioContext) -> datetime | None:
    """When the anomaly began, as far as the windows tell: the current window's start.

    A change on the root-cause segment that went live inside the current window makes the
    order of change and anomaly unknowable at this resolution: None (guard then asks a
    human before rolling that change back).
    """
    segment = obs.root_cause[0] if obs.root_cause else {}
    inside = [c for c in suspect_changes(obs, context, segment) if c.ts > obs.current.start]
    return None if inside else obs.current.start


def _signature_of(
    rc: RootCauseDetail, ev: SegmentEvidence, obs: Observation, context: ScenarioContext
) -> Signature:
    """Features of one root cause, read from its segment's evidence."""
    b, c = ev.baseline, ev.current
    moved = {s.code: s.current_share - s.baseline_share for s in ev.code_shifts}
    total = sum(v for v in moved.values() if v > 0)
    error_rise = max(c.gateway_error_rate - b.gateway_error_rate, c.error_rate - b.error_rate, 0.0)

    def mass(*classes: CodeClass) -> float:
        return sum(v for k, v in moved.items() if code_class(k) in classes and v > 0)

    def ratio(after: float, before: float) -> float:
        return after / before if before > 0 else 1.0

    # Errors without a code still say "technical"; count them with the technical family.
    technical = mass("technical") + max(moved.get(NO_CODE, 0.0), 0.0)
    denominator = max(total, error_rise, 1e-9)
    return Signature(
        metric=rc.metric,
        dims=frozenset(ev.segment),
        segment=ev.segment,
        drop=b.success_rate - c.success_rate,
        error_rise=error_rise,
        technical=min(1.0, max(technical, error_rise) / denominator),
        fraud=mass("fraud") / denominator,
        authentication=mass("authentication") / denominator,
        insufficient_funds=sum(
            v for k, v in moved.items() if canonical_code(k) == INSUFFICIENT_FUNDS and v > 0
        )
        / denominator,
        three_ds_failure_rise=c.three_ds_failure_rate - b.three_ds_failure_rate,
        latency_ratio_p95=ratio(c.latency_p95, b.latency_p95),
        latency_ratio_p99=ratio(c.latency_p99, b.latency_p99),
        moved_codes=tuple(s.code for s in ev.code_shifts),
        suspect_changes=tuple(suspect_changes(obs, context, ev.segment)),
        measures=signals.measures_of(rc.metric),
        signals=frozenset(label.split(" ")[0] for label in ev.signals),
        # Evidence that lists no signals (built by hand, or older) restricts nothing.
        approvals_lost=not ev.signals
        or any(signals.loses_approvals(label.split(" ")[0]) for label in ev.signals),
        approved_latency_ratio=ratio(c.approved_latency_p95, b.approved_latency_p95),
        mix_shift=rc.mix_shift and ev.segment == rc.segment,
    )


def signature(obs: Observation, context: ScenarioContext) -> Signature | None:
    """Features of the primary root cause, or None when nothing was localized."""
    if not obs.root_causes or not obs.evidence:
        return None
    return _signature_of(obs.root_causes[0], obs.evidence[0], obs, context)


def alternative_signatures(obs: Observation, context: ScenarioContext) -> list[Signature]:
    """Features of the segments the data fits as well as the primary root cause."""
    if not obs.root_causes:
        return []
    rc = obs.root_causes[0]
    return [_signature_of(rc, ev, obs, context) for ev in obs.alternatives]


def rank_kinds(sig: Signature) -> list[tuple[IncidentKind, float]]:
    """The registered kinds that recognise `sig`, most confident first.

    A claim from what failed (a code family, a metric) always counts. A claim from where
    the failure sits counts in full when the failures are technical, and otherwise only
    when nothing else explains them, capped at `location_only`. Equal confidences keep a
    claim from what failed ahead of one from where, then the registry's order. A close
    runner-up means the evidence is mixed: it lowers the leader's confidence.
    """
    claims = [
        (kind.name, found)
        for kind in incidents.kinds()
        if kind.recognise is not None and (found := kind.recognise(sig)) is not None
    ]
    counted = [(n, r) for n, r in claims if not r.by_location or sig.technical_led]
    if not counted:
        counted = [
            (n, Recognition(min(r.confidence, CONFIDENCE.location_only), by_location=True))
            for n, r in claims
        ]
    counted.sort(key=lambda c: (-c[1].confidence, c[1].by_location))
    ranked = [(name, found.confidence) for name, found in counted]
    if len(ranked) > 1:
        (lead_kind, lead), (_, runner_up) = ranked[0], ranked[1]
        mixed = round(
            max(
                CONFIDENCE.mixed_floor,
                lead - CONFIDENCE.runner_up_weight * runner_up + CONFIDENCE.mixed_offset,
            ),
            4,
        )
        # Mixed evidence makes every reading less sure, not a runner-up likelier than the
        # kind chosen: none is shown above the leader.
        ranked = [(lead_kind, mixed)] + [(k, min(c, mixed)) for k, c in ranked[1:]]
    return ranked


def classify(obs: Observation, context: ScenarioContext) -> list[IncidentHypothesis]:
    """Ranked hypotheses about the incident kind, each with a confidence and its evidence.

    When the data fits a narrower segment as well as the root cause (an alternative) and
    that segment reads as another kind, the alternative's kind is listed too, with the
    segment it reads (`IncidentHypothesis.segment`), and it lowers the leader's
    confidence as a close runner-up does.
    """
    if not obs.anomalous:
        return [
            IncidentHypothesis(
                incident_kind=QUIET,
                confidence=CONFIDENCE.quiet,
                evidence=["no segment changed significantly"],
            )
        ]
    sig = signature(obs, context)
    if sig is None:
        return [
            IncidentHypothesis(
                incident_kind=QUIET,
                confidence=CONFIDENCE.unlocalized,
                evidence=["anomalies flagged but none localized"],
            )
        ]
    where = format_segment(sig.segment)
    facts = [
        f"root cause {where} ({sig.metric}{', traffic mix' if sig.mix_shift else ''})",
        f"success rate drop {sig.drop * 100:.1f} pp, error rate +{sig.error_rise * 100:.1f} pp",
        f"moved codes: {', '.join(sig.moved_codes) or 'none'}",
        f"latency p95 x{sig.latency_ratio_p95:.2f}, p99 x{sig.latency_ratio_p99:.2f}, "
        f"approved p95 x{sig.approved_latency_ratio:.2f}",
        f"signals flagged: {', '.join(sorted(sig.signals)) or 'none'}",
    ]
    if sig.suspect_changes:
        facts.append(
            "recent change: "
            + ", ".join(f"{c.kind} {c.version or ''}".strip() for c in sig.suspect_changes)
        )
    ranked = rank_kinds(sig)
    hypotheses = [
        IncidentHypothesis(incident_kind=k, confidence=c, evidence=facts) for k, c in ranked
    ]
    if not ranked:
        # No kind claims it: an anomaly with a cause but no explanation is a coin toss.
        return [
            IncidentHypothesis(
                incident_kind=QUIET,
                confidence=CONFIDENCE.unlocalized,
                evidence=["no incident kind recognises the root cause", *facts],
            )
        ]
    lead_kind, lead = ranked[0]
    for alt in alternative_signatures(obs, context):
        alt_ranked = rank_kinds(alt)
        if not alt_ranked or alt_ranked[0][0] == lead_kind:
            continue
        alt_kind, alt_conf = alt_ranked[0]
        lead = round(
            max(
                CONFIDENCE.mixed_floor,
                lead - CONFIDENCE.runner_up_weight * alt_conf + CONFIDENCE.mixed_offset,
            ),
            4,
        )
        hypotheses[0] = hypotheses[0].model_copy(update={"confidence": lead})
        hypotheses.append(
            IncidentHypothesis(
                incident_kind=alt_kind,
                confidence=round(min(alt_conf, lead), 4),
                evidence=[
                    f"the data fits {format_segment(alt.segment)} as well as {where}",
                    *facts[1:],
                ],
                segment=alt.segment,
            )
        )
    return hypotheses


def _severity(obs: Observation) -> Severity:
    severities = {a.severity for a in obs.anomalies}
    for level in ("critical", "warning"):
        if level in severities:
            return level
    return "info"


def _best_route(
    snap: SegmentSnapshot, source: str, context: ScenarioContext, limits: GuardLimits
) -> str | None:
    """The healthy processor with the best current success rate on the segment, among
    those with the current attempts guard needs to trust a route's rate."""
    options = [
        r
        for name, r in snap.routes.items()
        if not same_identifier(name, source)
        and r.attempts >= limits.min_target_route_attempts
        and is_healthy(context, snap, name)
    ]
    if not options:
        return None
    return max(options, key=lambda r: (r.success_rate, r.attempts, r.processor)).processor


def _incident(
    kind: IncidentKind,
    obs: Observation,
    context: ScenarioContext,
    snapshots: Snapshotter,
    limits: GuardLimits,
) -> actions.Incident:
    """What the catalogue's candidate builders read about this incident."""
    segment = obs.root_cause[0] if obs.root_cause else {}
    ev: SegmentEvidence | None = obs.evidence[0] if obs.evidence else None

    def best_route() -> str | None:
        source = segment.get("processor")
        return None if source is None else _best_route(snapshots(segment), source, context, limits)

    return actions.Incident(
        kind=kind,
        segment=segment,
        severity=_severity(obs),
        moved_codes=tuple(s.code for s in ev.code_shifts) if ev else (),
        suspect_changes=tuple(suspect_changes(obs, context, segment)),
        best_route=best_route,
        limits=limits,
    )


def _candidate_decisions(
    kind: IncidentKind, incident: actions.Incident, confidence: float
) -> list[Decision]:
    """Each candidate the actions of `kind`'s playbook offer, in playbook order."""
    return [
        Decision(action=spec.name, params=params.model_dump(mode="json"), confidence=confidence)
        for spec in actions.playbook(kind)
        if spec.candidates is not None
        for params in spec.candidates(incident)
    ]


def guard_input(
    decision: Decision,
    snapshot: SegmentSnapshot,
    obs: Observation,
    context: ScenarioContext,
    ledger_history: tuple[PastAction, ...] = (),
) -> GuardInput:
    """What guard reads about `decision`, a remedy for the incident `obs` found.

    `snapshot` is the decision's target segment over the observation's windows; `context`
    the scenario's operational context; `ledger_history` what payops's ledger holds.
    """
    return GuardInput(
        decision=decision,
        snapshot=snapshot,
        evidence_attempts=obs.evidence[0].current.attempts if obs.evidence else 0,
        context=context,
        now=obs.current.end,
        anomaly_start=anomaly_start(obs, context),
        root_cause=tuple(obs.root_cause),
        ledger_history=ledger_history,
    )


def _rationale(kind: IncidentKind, obs: Observation, decision: Decision, improvement: float) -> str:
    ev = obs.evidence[0] if obs.evidence else None
    if kind == "none" or ev is None:
        return "No segment's success rate, volume or latency changed significantly; nothing to do."
    b, c = ev.baseline, ev.current
    codes = ", ".join(
        f"{s.code} +{(s.current_share - s.baseline_share) * 100:.1f}pp" for s in ev.code_shifts[:3]
    )
    parts = [
        f"{kind} at {format_segment(ev.segment)}: success rate {b.success_rate:.1%} -> "
        f"{c.success_rate:.1%}, p95 latency {b.latency_p95:.0f} -> {c.latency_p95:.0f} ms",
    ]
    if codes:
        parts.append(f"codes that moved: {codes}")
    if decision.action in ("shift_traffic", "failover_processor"):
        parts.append(f"{decision.params['to_processor']} is the best healthy route on this segment")
    parts.append(f"{decision.action} simulated at {improvement * 100:+.1f} pp")
    return "; ".join(parts) + "."


def reason(
    obs: Observation,
    context: ScenarioContext,
    snapshots: Snapshotter,
    learning: LearningContext,
    limits: GuardLimits,
) -> Reasoning:
    """Classify, rank candidate remedies by playbook, simulation and history, and decide."""
    hypotheses = classify(obs, context)
    kind = hypotheses[0].incident_kind
    confidence = hypotheses[0].confidence
    playbook = [spec.name for spec in actions.playbook(kind)]
    # A remedy forbidden under an explanation the data cannot rule out is not right
    # under both: leave it out.
    ruled_out = {
        action
        for h in hypotheses
        if h.segment is not None
        for action in incidents.get(h.incident_kind).forbidden
    }
    # Failures without approvals lost where the cause sits (only errors, a code or the
    # decline mix moved) warrant no change to traffic yet: only risk-free actions remain.
    sig = signature(obs, context)
    if sig is not None and sig.failing and not sig.approvals_lost:
        ruled_out |= {spec.name for spec in actions.actions() if spec.risk != "none"}
    incident = _incident(kind, obs, context, snapshots, limits)
    ranked: list[tuple[float, int, RemedyCandidate]] = []
    refused: list[RefusedRemedy] = []
    for position, decision in enumerate(_candidate_decisions(kind, incident, confidence)):
        if decision.action in ruled_out:
            continue
        snap = snapshots(decision.target_segment())
        outcome = simulate(decision, snap, context)
        verdict = evaluate(guard_input(decision, snap, obs, context), limits)
        if (
            verdict.status == "blocked"
            and verdict.violations
            and any(v.rule != "min_confidence" for v in verdict.violations)
        ):
            # Guard would refuse it whatever the confidence: not a candidate, but said.
            refused.append(
                RefusedRemedy(
                    action=decision.action, params=decision.params, violations=verdict.violations
                )
            )
            continue
        rank = playbook.index(decision.action)
        prior = PLAYBOOK_PRIOR[min(rank, len(PLAYBOOK_PRIOR) - 1)]
        score = prior + outcome.improvement + learning.adjustment(kind, decision.action)
        candidate = RemedyCandidate(
            decision=decision, estimated_improvement=outcome.improvement, score=round(score, 6)
        )
        ranked.append((-score, position, candidate))
    ranked.sort(key=lambda t: (t[0], t[1]))
    candidates = [c for _, _, c in ranked]
    if candidates:
        top = candidates[0]
        chosen = top.decision.model_copy(
            update={
                "rationale": _rationale(kind, obs, top.decision, top.estimated_improvement),
                "reasoner": "deterministic",
            }
        )
    else:
        summary = f"{kind}: no remedy passes policy; paging on-call"
        chosen = Decision(
            action="notify_oncall",
            confidence=confidence,
            params={"severity": _severity(obs), "summary": summary},
            rationale=summary,
        )
        # Listed, so a model choosing among the candidates sees the same way out.
        candidates = [RemedyCandidate(decision=chosen, estimated_improvement=0.0, score=0.0)]
    return Reasoning(hypotheses, kind, candidates, chosen, refused)


def evidence_for_model(
    scenario_id: str, obs: Observation, context: ScenarioContext, reasoning: Reasoning
) -> ReasoningEvidence:
    """What the model is shown: the classification, the top anomalies and the candidates."""
    return ReasoningEvidence(
        scenario_id=scenario_id,
        incident_kind=reasoning.incident_kind,
        hypotheses=reasoning.hypotheses,
        root_cause=obs.root_cause,
        anomalies=obs.anomalies[:5],
        candidates=reasoning.candidates,
        processors=context.processors,
        recent_changes=context.recent_changes,
    )
