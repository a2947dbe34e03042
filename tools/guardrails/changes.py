"""Rules on undoing changes: config rollbacks and fraud-rule adjustments.

A change's kind is classified by the closed vocabulary in tools/change_kinds.py, never by
a substring: `frm_rule` and `velocity_rule` are fraud rules, and a kind the vocabulary
does not know needs a human. A rollback undoes only a listed change that touches the
incident's segment, went live shortly before the anomaly, and preceded it.
"""

from __future__ import annotations

from datetime import timedelta

from tools.actions.adjust_fraud_rule import AdjustFraudRuleParams
from tools.actions.rollback_config import RollbackConfigParams
from tools.change_kinds import change_class, change_kind_key, is_fraud_rule_change
from tools.contract import RecentChange, format_segment, iso
from tools.guardrails.base import Escalation, Finding, GuardInput, segments_overlap, violation
from tools.guardrails.limits import GuardLimits
from tools.identifiers import identifier_key, same_identifier, segment_identity


def same_change(a: RecentChange, b: RecentChange) -> bool:
    """True when `a` and `b` are the same change: same time, kind, target and version,
    each compared by meaning."""
    return (
        a.ts == b.ts
        and change_kind_key(a.kind) == change_kind_key(b.kind)
        and segment_identity(a.target) == segment_identity(b.target)
        and identifier_key(a.version or "") == identifier_key(b.version or "")
    )


def _rollback(inp: GuardInput) -> RollbackConfigParams | None:
    p = inp.params
    return p if isinstance(p, RollbackConfigParams) else None


def rollback_known_change(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Only a change listed in context.recent_changes can be rolled back."""
    p = _rollback(inp)
    if p is None:
        return []
    if not any(same_change(p.change, c) for c in inp.context.recent_changes):
        return violation(
            "rollback_known_change",
            f"change {p.change.kind} {p.change.version or ''} at {iso(p.change.ts)} is not "
            "one of the recent changes",
        )
    return []


def rollback_touches_incident(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """The change must touch the incident: its target overlaps a root-cause segment."""
    p = _rollback(inp)
    if p is None:
        return []
    if not inp.root_cause:
        return violation(
            "rollback_touches_incident",
            "the incident has no root-cause segment, so no change can be shown to cause it",
        )
    if not any(segments_overlap(p.change.target, segment) for segment in inp.root_cause):
        causes = "; ".join(format_segment(s) for s in inp.root_cause)
        return violation(
            "rollback_touches_incident",
            f"change {p.change.kind} on {format_segment(p.change.target)} does not touch the "
            f"incident's segment ({causes})",
        )
    return []


def rollback_recent(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Only a recent change can be rolled back: at most `max_change_age_minutes` before the
    anomaly began (before the end of the data when the start is unknown)."""
    p = _rollback(inp)
    if p is None:
        return []
    since = (inp.anomaly_start or inp.now) - timedelta(minutes=limits.max_change_age_minutes)
    if p.change.ts < since:
        return violation(
            "rollback_recent",
            f"change at {iso(p.change.ts)} is more than {limits.max_change_age_minutes:g} min "
            "before the anomaly; it is not a suspect",
        )
    return []


def rollback_precedes_anomaly(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """The anomaly must start after the change that is rolled back."""
    p = _rollback(inp)
    if p is None:
        return []
    if inp.anomaly_start is None:
        return [
            Escalation(
                "rollback_precedes_anomaly",
                "anomaly start unknown: cannot show the change preceded it",
            )
        ]
    if p.change.ts >= inp.anomaly_start:
        return violation(
            "rollback_precedes_anomaly",
            f"change at {iso(p.change.ts)} is not before the anomaly start "
            f"{iso(inp.anomaly_start)}",
        )
    return []


def fraud_rule_rollback_needs_human(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Rolling back a fraud rule changes fraud exposure: a human approves it."""
    p = _rollback(inp)
    if p is not None and is_fraud_rule_change(p.change.kind):
        return [
            Escalation(
                "fraud_rule_rollback_needs_human",
                f"rolling back fraud rule change {p.change.version or p.change.kind} needs a human",
            )
        ]
    return []


def rollback_unknown_change_kind(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A change of a kind the vocabulary does not know is rolled back only by a human."""
    p = _rollback(inp)
    if p is not None and change_class(p.change.kind) is None:
        return [
            Escalation(
                "rollback_unknown_change_kind",
                f"change kind {p.change.kind!r} is not in the change vocabulary; a human "
                "decides what rolling it back does",
            )
        ]
    return []


def fraud_rule_shadow_first(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A fraud rule goes to shadow mode before it is disabled or re-thresholded."""
    p = inp.params
    if not isinstance(p, AdjustFraudRuleParams) or p.mode == "shadow":
        return []
    shadowed = any(
        a.action == "adjust_fraud_rule"
        and same_identifier(str(a.params.get("merchant_id", "")), p.merchant_id)
        and same_identifier(str(a.params.get("rule", "")), p.rule)
        and a.params.get("mode") == "shadow"
        for a in inp.context.recent_actions
    )
    if not shadowed:
        return violation(
            "fraud_rule_shadow_first",
            f"rule {p.rule} of {p.merchant_id} must run in shadow mode before mode {p.mode}",
        )
    return []
