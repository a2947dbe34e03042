"""Root-cause localization: the smallest set of segments that explains a change.

In the spirit of Adtributor, HotSpot and Squeeze, but with tests on *remainders*:
failures are additive, so for any segment S inside a segment P the traffic of P outside S
has counts P - S, and we can ask whether it shares S's problem.

Whether a remainder is *spared* is judged against the effect actually seen in the
candidate: a likelihood ratio between "untouched" and "hit as hard as the candidate",
computed on the effect scale with the variance taken at the hypotheses (and the
candidate's own error counted). At least 5:1 for untouched is spared, at least 5:1 for
hit is hit, and anything between means the data cannot tell the explanations apart.

A bad segment S is a root cause when
- it cannot be *generalized*: for every parent P (S with one dimension dropped), the rest
  of P is spared and carries less of the change than S. If the rest of P is hit (or too
  small to tell), P explains as much with fewer conditions, so S is only a slice of P
  ("country Y on every processor"). Other bad siblings of S along the same dimension are
  left out of that rest: two processors down at once are two causes, not "all traffic";
- it cannot be *refined*: for no bad child C (S with one more dimension) is the rest of S
  spared with less of the change than C has, and the bad children along one dimension do
  not leave such a rest either. If they do, the children are the real causes ("processor
  X in country Y") and S only inherits their drop.

When a child's remainder is neither spared nor hit, the child is reported as an
*alternative*: the data fits both. A rate change that the traffic mix of S's children
explains on its own (more attempts from a low-approval country, every rate unchanged) is
not a rate drop: its cause is the child whose share grew, marked as a mix shift.

Several incidents at once are found one at a time: the largest root cause is chosen, its
traffic is removed, and the segments are measured again. A further cause is named only
when what remains still shows a significant change and the cause explains a real share
of it. Depth adapts: a cause at the deepest measured level is looked into one dimension
further, inside its own traffic only, up to `ObserveConfig.depth`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tools.config import ObserveConfig
from tools.contract import Segment
from tools.metrics import LeafKey, SegmentTable, key_of
from tools.signals.base import Counts, PaceSignal, Signal
from tools.stats import normal_isf

# Evidence of at least 5:1 decides "spared" or "hit"; in between the data cannot tell.
SPARED_LOG_ODDS = math.log(5.0)
# ...and the rest's own effect must sit far enough from the midpoint, in its own standard
# errors, that a rest this far by chance has a one-sided tail of at most this (over the
# candidates weighed): a small rest hit less hard is not "spared" because the candidate
# is precise.
MIDPOINT_TAIL = 0.1
# A 3DS failure cannot reach traffic that never runs 3DS (wallets, bank transfers), so
# that traffic being spared does not make a narrower segment the cause.
THREE_DS_RISE = 0.05
# Causes whose excess is within this fraction of the largest explain the change about as
# well (noise in clean traffic moves a broad segment's excess by this much); of those,
# effects within SAME_EFFECT of the sharpest count as the same traffic.
TIE_SHARE = 0.75
SAME_EFFECT = 0.9
# A further cause must explain at least this share of the first cause's change.
RESIDUAL_SHARE = 0.10


@dataclass(frozen=True)
class RootCause:
    """One root-cause segment, how much of the change it explains, and what else fits."""

    key: LeafKey
    metric: str
    detail: str | None
    effect: float
    excess: float
    explained_share: float
    lost_approvals: float = 0.0
    alternatives: tuple[LeafKey, ...] = ()
    mix_shift: bool = False

    @property
    def segment(self) -> Segment:
        """The segment in CONTRACT form (an absent dimension means any value)."""
        return dict(self.key)


def disjoint(a: LeafKey, b: LeafKey) -> bool:
    """Two segments that share no traffic (they fix one dimension to different values)."""
    fixed = dict(a)
    return any(dim in fixed and fixed[dim] != value for dim, value in b)


def nested(a: LeafKey, b: LeafKey) -> bool:
    """One segment contains the other."""
    return set(a) <= set(b) or set(b) <= set(a)


def _parents(key: LeafKey) -> list[LeafKey]:
    return [key[:i] + key[i + 1 :] for i in range(len(key))]


def _added_dimension(parent: LeafKey, child: LeafKey) -> str:
    return next(d for d, v in child if (d, v) not in parent)


def spared_log_odds(signal: Signal, part: Counts, rest: Counts, looks: int = 1) -> float:
    """Evidence that `rest` is untouched rather than hit like `part` (natural log),
    signed by where the rest's effect sits: at least `SPARED_LOG_ODDS` is spared, at
    most minus that is hit, anything between cannot tell.

    The two explanations differ by the part's effect e; the rest's estimated effect
    is judged against both, with its variance at the midpoint (and half the part's,
    whose effect is an estimate too): log-odds e (e/2 - e_rest) / variance. That
    alone would call a rest hit half as hard "spared" once the part is precise, so
    the rest's effect must also sit far from the midpoint in its own standard errors
    (`MIDPOINT_TAIL`, over `looks` candidates weighed alike); otherwise the log-odds
    are cut to undecided. A rest with nothing to test tells nothing.
    """
    effect = signal.effect(part)
    if rest.current_n <= 0 or rest.baseline_n <= 0 or effect <= 0:
        return 0.0
    rest_var = signal.effect_var(rest, effect / 2.0)
    variance = rest_var + signal.effect_var(part, effect) / 4.0
    gap = effect / 2.0 - signal.effect(rest)
    if abs(gap) < normal_isf(MIDPOINT_TAIL / max(looks, 1)) * math.sqrt(rest_var):
        return 0.0
    return effect * gap / variance


class _Judge:
    """Applies the bad / spared tests of one signal to one segment table."""

    def __init__(self, table: SegmentTable, signal: Signal, p_cutoff: float) -> None:
        self.table = table
        self.signal = signal
        self.p_cutoff = p_cutoff
        self.bad: dict[LeafKey, Counts] = {}
        for key, m in table.segments.items():
            c = signal.counts(m)
            if self.is_bad(c) and signal.p_value(c) <= table.deep_level(key, signal.cfg.fdr):
                self.bad[key] = c
        # Bad children of each segment, grouped by the dimension they add.
        self.children: dict[LeafKey, dict[str, list[LeafKey]]] = {}
        # Their counts summed, per (segment, dimension): asked once per bad child.
        self._children_sums: dict[tuple[LeafKey, str], Counts] = {}
        for key in self.bad:
            for parent in _parents(key):
                dim = _added_dimension(parent, key)
                self.children.setdefault(parent, {}).setdefault(dim, []).append(key)

    def counts(self, key: LeafKey) -> Counts:
        return self.signal.counts(self.table.get(key))

    def is_bad(self, c: Counts) -> bool:
        s = self.signal
        return s.enough_sample(c) and s.material(c) and s.p_value(c) <= self.p_cutoff

    def spared_log_odds(self, part: Counts, rest: Counts, looks: int = 1) -> float:
        """`spared_log_odds` with this judge's signal."""
        return spared_log_odds(self.signal, part, rest, looks)

    def exposed(self, key: LeafKey, child: LeafKey) -> bool:
        """Whether the rest of `key` outside `child` could have shown the child's problem."""
        whole, part = self.table.get(key), self.table.get(child)
        rest_3ds = (whole.baseline.three_ds_attempts - part.baseline.three_ds_attempts) + (
            whole.current.three_ds_attempts - part.current.three_ds_attempts
        )
        rise = part.current.three_ds_failure_rate - part.baseline.three_ds_failure_rate
        return rest_3ds > 0 or rise < THREE_DS_RISE

    def _children_sum(self, parent: LeafKey, dim: str) -> Counts:
        """The bad children of `parent` along `dim`, summed (computed once)."""
        found = self._children_sums.get((parent, dim))
        if found is None:
            found = self._children_sums[(parent, dim)] = self._sum(self.children[parent][dim])
        return found

    def _sum(self, keys: Sequence[LeafKey]) -> Counts:
        total = Counts(0.0, 0.0, 0.0, 0.0)
        for k in keys:
            c = self.bad[k]
            total = Counts(
                total.baseline_n + c.baseline_n,
                total.baseline_x + c.baseline_x,
                total.current_n + c.current_n,
                total.current_x + c.current_x,
            )
        return total

    def generalizable(self, key: LeafKey) -> bool:
        """Some parent explains S as well: the rest of it is not spared by S's problem."""
        for parent in _parents(key):
            if not self.exposed(parent, key):
                return True
            whole, c = self.counts(parent), self.bad[key]
            if self.explains(c, whole.minus(c)):
                continue
            # Several causes at once along S's dimension (two processors down): with the
            # bad siblings of S out too (they include S), is the rest of P spared?
            dim = _added_dimension(parent, key)
            if len(self.children[parent][dim]) > 1:
                part = self._children_sum(parent, dim)
                if self.explains(part, whole.minus(part)):
                    continue
            return True
        return False

    def explains(self, part: Counts, rest: Counts, looks: int = 1) -> bool:
        """`part` is the cause and `rest` is not: the rest looks spared by the part's
        problem, and what change it has is smaller than the part's.

        `looks` is how many candidate parts were weighed the same way (looking one level
        deeper weighs every child at once): picking the one whose rest looks most spared
        among many makes a lucky rest likely, so the odds needed grow with it.
        """
        s = self.signal
        spared = self.spared_log_odds(part, rest, looks)
        return spared >= SPARED_LOG_ODDS + math.log(looks) and s.excess(rest) < s.excess(part)

    def refinable(self, key: LeafKey) -> bool:
        """A bad child (or the bad children along one dimension) leaves a spared rest."""
        c = self.bad[key]
        for dim, kids in self.children.get(key, {}).items():
            for child in kids:
                if not self.exposed(key, child):
                    continue
                part = self.bad[child]
                if self.explains(part, c.minus(part)):
                    return True
            if len(kids) > 1:
                part = self._children_sum(key, dim)
                if self.explains(part, c.minus(part)):
                    return True
        return False

    def alternatives(self, key: LeafKey) -> tuple[LeafKey, ...]:
        """Bad children whose rest of S the data cannot call hit or spared."""
        c = self.bad[key]
        found: list[tuple[float, LeafKey]] = []
        for kids in self.children.get(key, {}).values():
            for child in kids:
                rest = c.minus(self.bad[child])
                if rest.current_n <= 0 or not self.exposed(key, child):
                    continue
                if self.spared_log_odds(self.bad[child], rest) > -SPARED_LOG_ODDS:
                    found.append((-self.signal.excess(self.bad[child]), child))
        return tuple(k for _, k in sorted(found)[:1])


def _dimension_rank(key: LeafKey, dimensions: list[str]) -> tuple[int, ...]:
    order = {d: i for i, d in enumerate(dimensions)}
    return tuple(order.get(d, len(order)) for d, _ in key)


# The mix explains a rate change only when it accounts for at least this share of it.
MIX_SHARE = 0.5

def _mix_driver(judge: _Judge, key: LeafKey, c: Counts) -> LeafKey | None:
    """The child whose growing share alone explains S's rate change, if the mix does.

    For each dimension, the baseline rate S would have at the current mix of its children
    (each child at its own baseline rate) is compared with S's current rate. The mix
    explains the change when it accounts for most of the effect (`MIX_SHARE`) and what is
    left against that mix-adjusted baseline is not a change at the signal's own level
    (material and significant at `fdr`). A residual that merely misses the tighter
    cut-off of a flagged segment proves nothing: on a few dozen attempts it almost always
    does. The child that added most to the mix-adjusted rate is the driver.
    """
    signal = judge.signal
    if isinstance(signal, PaceSignal) or c.current_n <= 0:
        return None
    values = judge.table.values()
    fixed = {d for d, _ in key}
    for dim, vals in values.items():
        if dim in fixed or len(key) + 1 > judge.table.depth:
            continue
        adjusted = 0.0
        pushes: list[tuple[float, LeafKey]] = []
        for v in vals:
            child = key_of({**dict(key), dim: v}, judge.table.dimensions)
            cc = judge.counts(child)
            rate = cc.baseline_rate if cc.baseline_n > 0 else c.baseline_rate
            adjusted += cc.current_n * rate
            b_share = cc.baseline_n / c.baseline_n if c.baseline_n else 0.0
            c_share = cc.current_n / c.current_n
            pushes.append(((c_share - b_share) * (rate - c.baseline_rate), child))
        mix = Counts(c.baseline_n, c.baseline_n * adjusted / c.current_n, c.current_n, c.current_x)
        explained = signal.effect(c) - signal.effect(mix)
        residual = signal.material(mix) and signal.p_value(mix) <= signal.cfg.fdr
        if explained >= MIX_SHARE * signal.effect(c) and not residual:
            push, driver = max(pushes)
            return driver if push > 0 else None
    return None


@dataclass(frozen=True)
class _Pick:
    key: LeafKey
    counts: Counts
    alternatives: tuple[LeafKey, ...]
    mix_shift: bool
    # The table the key was measured in (a deeper one when depth adapted).
    table: SegmentTable | None = None


def _near_top(judge: _Judge) -> list[LeafKey]:
    """The candidates that explain about as much as the best, in `judge.bad`'s order.

    The pool is the causes (bad segments neither refinable nor generalizable), else the
    segments that cannot be refined, else every bad one; the candidates are those of it
    within `TIE_SHARE` of its largest excess. Segments are tested largest excess first:
    once a cause is found, one below `TIE_SHARE` of its excess cannot be a candidate, so
    it is not tested (those tests are most of localization's cost on a wide outage).
    """
    bad = judge.bad
    excess = {k: judge.signal.excess(c) for k, c in bad.items()}
    refinable: dict[LeafKey, bool] = {}
    causes: set[LeafKey] = set()
    first_cause: float | None = None
    for key in sorted(bad, key=lambda k: -excess[k]):
        if first_cause is not None and excess[key] < TIE_SHARE * first_cause:
            break
        refinable[key] = judge.refinable(key)
        if not refinable[key] and not judge.generalizable(key):
            causes.add(key)
            first_cause = excess[key] if first_cause is None else first_cause
    if causes:
        pool = [k for k in bad if k in causes]
    else:
        pool = [k for k in bad if not refinable[k]] or list(bad)
    top = max(excess[k] for k in pool)
    return [k for k in pool if excess[k] >= TIE_SHARE * top]


def _pick(judge: _Judge) -> _Pick | None:
    """The best root-cause candidate of one table, or None when nothing is bad."""
    bad = judge.bad
    if not bad:
        return None
    signal = judge.signal
    near = _near_top(judge)
    # Of explanations that account for about as much, the most concentrated one is the
    # answer (processor x network, not processor x "card", which dilutes it with clean
    # traffic); equally concentrated ones are the same traffic named two ways, and the
    # simpler name wins.
    sharpest = max(signal.effect(bad[k]) for k in near)
    near = [k for k in near if signal.effect(bad[k]) >= SAME_EFFECT * sharpest]

    def rank(key: LeafKey) -> tuple[int, tuple[int, ...], float]:
        return (len(key), _dimension_rank(key, judge.table.dimensions), -signal.excess(bad[key]))

    best = min(near, key=rank)
    # A 3DS failure on a segment's 3DS traffic is that segment's: the rest of it could not
    # have shown the failure, so the segment is as right and simpler.
    while unexposed := [p for p in _parents(best) if not judge.exposed(p, best)]:
        best = unexposed[0]
        if best not in bad:
            return _Pick(best, judge.counts(best), (), False)
    driver = _mix_driver(judge, best, bad[best])
    if driver is not None:
        return _Pick(driver, judge.counts(driver), (), True)
    return _Pick(best, bad[best], judge.alternatives(best), False)


Remeasure = Callable[[list[Segment]], SegmentTable]
Deeper = Callable[[LeafKey, list[Segment]], SegmentTable]


def _deepen(
    pick: _Pick,
    judge: _Judge,
    cfg: ObserveConfig,
    deeper: Deeper | None,
    excluded: list[Segment],
) -> _Pick:
    """Look one dimension further inside a cause at the deepest measured level."""
    current = pick
    while (
        deeper is not None
        and not current.mix_shift
        and len(current.key) == judge.table.depth
        and len(current.key) < cfg.depth
    ):
        table = deeper(current.key, excluded)
        table.segments.setdefault(current.key, judge.table.get(current.key))
        inner = _Judge(table, judge.signal, judge.p_cutoff)
        signal = judge.signal
        kids = [k for k in inner.bad if len(k) == len(current.key) + 1]
        explaining = [
            k
            for k in kids
            if inner.exposed(current.key, k)
            and inner.explains(inner.bad[k], current.counts.minus(inner.bad[k]), len(kids))
        ]
        if not explaining:
            break
        # As in `_pick`: of children explaining about as much, the most concentrated (a
        # network inside the processor's cards, not "card", which dilutes it).
        top_excess = max(signal.excess(inner.bad[k]) for k in explaining)
        near = [k for k in explaining if signal.excess(inner.bad[k]) >= TIE_SHARE * top_excess]
        best = max(near, key=lambda k: (signal.effect(inner.bad[k]), signal.excess(inner.bad[k])))
        # The deeper segment may be a slice of another measured segment (processor x
        # currency, seen first as processor x country x currency): then that one it is.
        part = inner.bad[best]
        wider = [
            p
            for p in _parents(best)
            if p != current.key
            and p in judge.bad
            and not judge.explains(part, judge.bad[p].minus(part))
        ]
        if wider:
            top = max(wider, key=lambda p: judge.signal.excess(judge.bad[p]))
            return _Pick(top, judge.bad[top], (), False)
        current = _Pick(best, part, (), False, table)
        judge = inner
    return current


def localize(
    table: SegmentTable,
    signal: Signal,
    cfg: ObserveConfig,
    p_cutoff: float,
    remeasure: Remeasure,
    *,
    deeper: Deeper | None = None,
    flagged: Sequence[LeafKey] = (),
) -> list[RootCause]:
    """Find up to `cfg.max_root_causes` segments that together explain the change.

    `remeasure(excluded)` returns the segment table with the traffic of `excluded`
    removed; it is how a found cause is explained away before looking for the next.
    `deeper(key, excluded)` measures the segments one dimension inside `key`, with the
    traffic of `excluded` removed as `remeasure` does. `flagged` are the
    segments detection flagged on this signal: when none of them is disjoint from the
    causes found, nothing else is left to find and no remeasure is needed.
    """
    if p_cutoff <= 0.0:
        return []
    causes: list[RootCause] = []
    current = table
    first_excess = 0.0
    total_excess = max(signal.excess(signal.counts(table.total)), 0.0)
    while len(causes) < cfg.max_root_causes:
        judge = _Judge(current, signal, p_cutoff)
        picked = _pick(judge)
        if picked is None:
            break
        picked = _deepen(picked, judge, cfg, deeper, [rc.segment for rc in causes])
        c = picked.counts
        excess = signal.excess(c)
        if causes:
            remaining = signal.counts(current.total)
            # Name a further cause only if a significant change remains outside the
            # causes found so far, and this one explains a real share of it.
            if (
                excess < RESIDUAL_SHARE * first_excess
                or signal.p_value(remaining) > cfg.fdr
                or excess < RESIDUAL_SHARE * max(signal.excess(remaining), 0.0)
            ):
                break
        first_excess = first_excess or excess
        share = excess / total_excess if total_excess > 0 else 1.0
        causes.append(
            RootCause(
                key=picked.key,
                metric=signal.name,
                detail=signal.detail,
                effect=signal.effect(c),
                excess=excess,
                explained_share=min(max(share, 0.0), 1.0),
                lost_approvals=signal.lost_approvals((picked.table or current).get(picked.key), c),
                alternatives=picked.alternatives,
                mix_shift=picked.mix_shift,
            )
        )
        # Another incident of this signal shows as a flagged segment sharing no traffic
        # with the causes found so far; overlapping ones are these causes' echoes.
        if not any(all(disjoint(k, rc.key) for rc in causes) for k in flagged):
            break
        current = remeasure([rc.segment for rc in causes])
    return causes
