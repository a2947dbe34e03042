"""Rules on moving traffic between processors (shift_traffic, failover_processor).

Processors are compared by meaning (tools/identifiers.py): `ACQ_B ` is `acq_b`, and a
look-alike spelling is a processor nobody knows, which is never healthy.
"""

from __future__ import annotations

from tools.actions.failover_processor import FailoverProcessorParams
from tools.actions.shift_traffic import ShiftTrafficParams
from tools.contract import format_segment
from tools.guardrails.base import (
    Finding,
    GuardInput,
    find_route,
    is_healthy,
    serves_segment,
    unhealthy_reason,
    violation,
)
from tools.guardrails.limits import GuardLimits
from tools.identifiers import same_identifier

Move = ShiftTrafficParams | FailoverProcessorParams


def _move(inp: GuardInput) -> Move | None:
    p = inp.params
    return p if isinstance(p, ShiftTrafficParams | FailoverProcessorParams) else None


def distinct_processors(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Traffic moves to a different processor."""
    m = _move(inp)
    if m is not None and same_identifier(m.from_processor, m.to_processor):
        return violation(
            "distinct_processors",
            f"from {m.from_processor} and to {m.to_processor} are the same processor",
        )
    return []


def processor_serves_segment(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Both processors carry the segment's traffic, and the segment is the source's."""
    m = _move(inp)
    if m is None:
        return []
    found: list[Finding] = []
    pinned = next((v for k, v in m.segment.items() if same_identifier(k, "processor")), None)
    if pinned is not None and not same_identifier(pinned, m.from_processor):
        found += violation(
            "processor_serves_segment",
            f"segment is pinned to processor {pinned} but traffic moves from {m.from_processor}",
        )
    where = format_segment(
        {k: v for k, v in m.segment.items() if not same_identifier(k, "processor")}
    )
    for role, name in (("source", m.from_processor), ("target", m.to_processor)):
        if not serves_segment(inp, name):
            found += violation(
                "processor_serves_segment", f"{role} {name} carries no traffic of {where}"
            )
    return found


def target_healthy(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never move traffic to a processor that is unhealthy or unknown."""
    m = _move(inp)
    if m is None:
        return []
    reason = unhealthy_reason(inp.context, inp.snapshot, m.to_processor)
    if reason is not None:
        return violation("target_healthy", f"target {reason}")
    return []


def target_route_evidence(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """The target needs enough current attempts on the segment to show it is better."""
    m = _move(inp)
    route = None if m is None else find_route(inp.snapshot, m.to_processor)
    if m is None or route is None or not serves_segment(inp, m.to_processor):
        return []  # processor_serves_segment reports it
    if route.attempts < limits.min_target_route_attempts:
        return violation(
            "target_route_evidence",
            f"target {m.to_processor} has {route.attempts} current attempts on the segment, "
            f"needs >= {limits.min_target_route_attempts} to compare",
        )
    return []


def target_not_worse(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never move traffic to a processor with a lower success rate on the segment."""
    m = _move(inp)
    if m is None:
        return []
    src = find_route(inp.snapshot, m.from_processor)
    dst = find_route(inp.snapshot, m.to_processor)
    if src is None or dst is None:
        return []  # processor_serves_segment reports it
    if dst.attempts > 0 and dst.success_rate < src.success_rate:
        return violation(
            "target_not_worse",
            f"target {m.to_processor} success rate {dst.success_rate:.1%} "
            f"({dst.approved}/{dst.attempts}) is below source {m.from_processor} "
            f"{src.success_rate:.1%} ({src.approved}/{src.attempts}) on the segment",
        )
    return []


def last_healthy_route(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """A failover needs another healthy processor serving the segment."""
    p = inp.params
    if not isinstance(p, FailoverProcessorParams):
        return []
    others = [
        name
        for name in inp.snapshot.routes
        if not same_identifier(name, p.from_processor)
        and serves_segment(inp, name)
        and is_healthy(inp.context, inp.snapshot, name)
    ]
    if not others:
        return violation(
            "last_healthy_route",
            f"failing over {p.from_processor} would remove the last healthy route of "
            f"{format_segment(p.segment)}",
        )
    return []
