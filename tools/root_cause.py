"""Root-cause localization: the smallest set of segments that explains a change.

In the spirit of Adtributor, HotSpot and Squeeze, but with tests on *remainders*:
failures are additive, so for any segment S inside a segment P the traffic of P outside S
has counts P - S, and we can ask whether it shares S's problem.

A bad segment S is a root cause when
- it cannot be *generalized*: for every parent P (S with one dimension dropped), the rest
  of P is spared. If the rest of P is hit as hard as S (or is too small to tell), P
  explains as much with fewer conditions, so S is only a slice of P ("country Y on every
  processor");
- it cannot be *refined*: for every bad child C (S with one more dimension), the rest of
  S is not clean. If the rest of S is clean, C is the real cause ("processor X in
  country Y") and S only inherits its drop.

Several incidents at once are found one at a time: the largest root cause is chosen, its
traffic is removed, and the segments are measured again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tools.config import ObserveConfig
from tools.contract import Segment
from tools.detection import CountModel, Counts
from tools.metrics import LeafKey, SegmentTable

# The rest of a segment is *spared* by its problem when the data favour "untouched" over
# "hit half as hard" by at least 5:1. Half, the midpoint, so that a rest hit less hard
# (but hit) does not pass as spared and noise favours neither answer; when there are too
# few attempts to tell, the rest is not spared, and the simpler segment wins.
# - S generalizes to its parent P unless the rest of P is spared;
# - S refines to its child C when the rest of S is spared by C's problem.
SPARED_LOG_ODDS = math.log(5.0)
SPARED_RATIO = 0.5
# A 3DS failure cannot reach traffic that never runs 3DS (wallets, bank transfers), so
# that traffic being spared does not make a narrower segment the cause.
THREE_DS_RISE = 0.05
# Causes whose excess is within this fraction of the largest explain the change about as
# well (noise in clean traffic moves a broad segment's excess by this much); of those,
# effects within SAME_EFFECT of the sharpest count as the same traffic.
TIE_SHARE = 0.75
SAME_EFFECT = 0.9
# Stop looking for further causes once what is left is this small next to the first.
RESIDUAL_SHARE = 0.10


@dataclass(frozen=True)
class RootCause:
    """One root-cause segment and how much of the change it explains."""

    key: LeafKey
    metric: str
    effect: float
    excess: float
    explained_share: float

    @property
    def segment(self) -> Segment:
        """The segment in CONTRACT form (an absent dimension means any value)."""
        return dict(self.key)


def _parents(key: LeafKey) -> list[LeafKey]:
    return [key[:i] + key[i + 1 :] for i in range(len(key))]


class _Judge:
    """Applies the bad / shares-cause tests of one metric to one segment table."""

    def __init__(
        self, table: SegmentTable, model: CountModel, cfg: ObserveConfig, p_cutoff: float
    ) -> None:
        self.table = table
        self.model = model
        self.cfg = cfg
        self.p_cutoff = p_cutoff

    def counts(self, key: LeafKey) -> Counts:
        return self.model.counts(self.table.get(key))

    def bad(self, c: Counts) -> bool:
        m = self.model
        return (
            m.enough_sample(c, self.cfg.min_sample)
            and m.material(c, self.cfg)
            and m.p_value(c) <= self.p_cutoff
        )

    def spared(self, rest: Counts, effect: float) -> bool:
        alternative = SPARED_RATIO * effect
        return self.model.spared_log_odds(rest, alternative) >= SPARED_LOG_ODDS

    def generalizable(self, key: LeafKey, c: Counts) -> bool:
        effect = self.model.effect(c)
        return any(
            not self.exposed(p, key) or not self.spared(self.counts(p).minus(c), effect)
            for p in _parents(key)
        )

    def exposed(self, key: LeafKey, child: LeafKey) -> bool:
        """Whether the rest of `key` outside `child` could have shown the child's problem."""
        whole, part = self.table.get(key), self.table.get(child)
        rest_3ds = (whole.baseline.three_ds_attempts - part.baseline.three_ds_attempts) + (
            whole.current.three_ds_attempts - part.current.three_ds_attempts
        )
        rise = part.current.three_ds_failure_rate - part.baseline.three_ds_failure_rate
        return rest_3ds > 0 or rise < THREE_DS_RISE

    def refinable(
        self, key: LeafKey, c: Counts, bad_children: list[tuple[LeafKey, Counts]]
    ) -> bool:
        return any(
            self.spared(c.minus(cc), self.model.effect(cc)) and self.exposed(key, child)
            for child, cc in bad_children
        )


def _dimension_rank(key: LeafKey, dimensions: list[str]) -> tuple[int, ...]:
    order = {d: i for i, d in enumerate(dimensions)}
    return tuple(order.get(d, len(order)) for d, _ in key)


def _pick(table: SegmentTable, judge: _Judge) -> tuple[LeafKey, Counts] | None:
    """The best root-cause candidate of one table, or None when nothing is bad."""
    bad: dict[LeafKey, Counts] = {}
    for key, m in table.segments.items():
        c = judge.model.counts(m)
        if judge.bad(c):
            bad[key] = c
    if not bad:
        return None
    children: dict[LeafKey, list[tuple[LeafKey, Counts]]] = {}
    for key, c in bad.items():
        for parent in _parents(key):
            children.setdefault(parent, []).append((key, c))
    not_refinable = [k for k, c in bad.items() if not judge.refinable(k, c, children.get(k, []))]
    causes = [k for k in not_refinable if not judge.generalizable(k, bad[k])]
    pool = causes or not_refinable or list(bad)

    model = judge.model
    top = max(model.excess(bad[k]) for k in pool)
    near = [k for k in pool if model.excess(bad[k]) >= TIE_SHARE * top]
    # Of explanations that account for about as much, the most concentrated one is the
    # answer (processor x network, not processor x "card", which dilutes it with clean
    # traffic); equally concentrated ones are the same traffic named two ways, and the
    # simpler name wins.
    sharpest = max(model.effect(bad[k]) for k in near)
    near = [k for k in near if model.effect(bad[k]) >= SAME_EFFECT * sharpest]

    def rank(key: LeafKey) -> tuple[int, tuple[int, ...], float]:
        return (len(key), _dimension_rank(key, table.dimensions), -model.excess(bad[key]))

    best = min(near, key=rank)
    return best, bad[best]


def localize(
    table: SegmentTable,
    model: CountModel,
    cfg: ObserveConfig,
    p_cutoff: float,
    remeasure: Callable[[list[Segment]], SegmentTable],
) -> list[RootCause]:
    """Find up to `cfg.max_root_causes` segments that together explain the change.

    `remeasure(excluded)` returns the segment table with the traffic of `excluded`
    removed; it is how a found cause is explained away before looking for the next.
    """
    if p_cutoff <= 0.0:
        return []
    causes: list[RootCause] = []
    current = table
    first_excess = 0.0
    total_excess = max(model.excess(model.counts(table.total)), 0.0)
    while len(causes) < cfg.max_root_causes:
        judge = _Judge(current, model, cfg, p_cutoff)
        picked = _pick(current, judge)
        if picked is None:
            break
        key, c = picked
        excess = model.excess(c)
        if causes and excess < RESIDUAL_SHARE * first_excess:
            break
        first_excess = first_excess or excess
        share = excess / total_excess if total_excess > 0 else 1.0
        causes.append(RootCause(key, model.name, model.effect(c), excess, min(share, 1.0)))
        current = remeasure([rc.segment for rc in causes])
    return causes
