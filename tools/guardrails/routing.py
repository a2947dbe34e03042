"""Rules on moving traffic between processors (shift_traffic, failover_processor)."""

from __future__ import annotations

from tools.contract import FailoverProcessorParams, ShiftTrafficParams, format_segment
from tools.guardrails.base import Finding, GuardInput, is_healthy, serves_segment, violation
from tools.guardrails.limits import GuardLimits

Move = ShiftTrafficParams | FailoverProcessorParams


def _move(inp: GuardInput) -> Move | None:
    p = inp.params
    return p if isinstance(p, ShiftTrafficParams | FailoverProcessorParams) else None


def distinct_processors(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Traffic moves to a different processor."""
    m = _move(inp)
    if m is not None and m.from_processor == m.to_processor:
        return violation(
            "distinct_processors", f"from and to are the same processor ({m.from_processor})"
        )
    return []


def processor_serves_segment(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Both processors carry the segment's traffic, and the segment is the source's."""
    m = _move(inp)
    if m is None:
        return []
    found: list[Finding] = []
    pinned = m.segment.get("processor")
    if pinned is not None and pinned != m.from_processor:
        found += violation(
            "processor_serves_segment",
            f"segment is pinned to processor {pinned} but traffic moves from {m.from_processor}",
        )
    where = format_segment({k: v for k, v in m.segment.items() if k != "processor"})
    for role, name in (("source", m.from_processor), ("target", m.to_processor)):
        if not serves_segment(inp, name):
            found += violation(
                "processor_serves_segment", f"{role} {name} carries no traffic of {where}"
            )
    return found


def target_healthy(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never move traffic to a processor the context marks unhealthy."""
    m = _move(inp)
    if m is not None and not is_healthy(inp, m.to_processor):
        return violation("target_healthy", f"target {m.to_processor} is marked unhealthy")
    return []


def target_route_evidence(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """The target needs enough current attempts on the segment to show it is better."""
    m = _move(inp)
    if m is None or not serves_segment(inp, m.to_processor):
        return []  # processor_serves_segment reports it
    attempts = inp.snapshot.routes[m.to_processor].attempts
    if attempts < limits.min_target_route_attempts:
        return violation(
            "target_route_evidence",
            f"target {m.to_processor} has {attempts} current attempts on the segment, "
            f"needs >= {limits.min_target_route_attempts} to compare",
        )
    return []


def target_not_worse(inp: GuardInput, limits: GuardLimits) -> list[Finding]:
    """Never move traffic to a processor with a lower success rate on the segment."""
    m = _move(inp)
    routes = inp.snapshot.routes
    if m is None or m.from_processor not in routes or m.to_processor not in routes:
        return []
    src, dst = routes[m.from_processor], routes[m.to_processor]
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
        if name != p.from_processor and serves_segment(inp, name) and is_healthy(inp, name)
    ]
    if not others:
        return violation(
            "last_healthy_route",
            f"failing over {p.from_processor} would remove the last healthy route of "
            f"{format_segment(p.segment)}",
        )
    return []
