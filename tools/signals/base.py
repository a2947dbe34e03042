"""The one small interface every signal implements, and the spec that registers it.

A signal is bound to one segment table (`SignalSpec.bind`). Per segment it reads additive
counts: attempts (or 3DS challenges, or declines) and "bad" events in each window. From
those it says how big the change is (`effect`), how surprising (`p_value`, one-sided), how
many bad events it added (`excess`), whether it is big enough to matter (`material`) and
how sure an effect estimate is (`effect_var`: localization judges remainders by it). Detection
and root-cause localization use nothing else, so "anomalous" means the same thing in
both, and a new signal is one module.

The default methods are those of a rate of bad events (a two-proportion comparison); a
signal that is not a rate (volume) overrides them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from tools.config import ObserveConfig
from tools.contract import Severity
from tools.metrics import SegmentMetrics, SegmentTable
from tools.signals.names import Measure, Unit
from tools.stats import normal_sf, rate_increase_p_value

# Probabilities are kept this far from 0 and 1 in likelihoods, so that a rate of exactly
# zero in a baseline (a code never seen before) still gives finite log-odds.
_EPS = 1e-6


@dataclass(frozen=True)
class Counts:
    """Additive counts of one segment: the tested units and the bad ones, per window."""

    baseline_n: float
    baseline_x: float
    current_n: float
    current_x: float

    def minus(self, other: Counts) -> Counts:
        """These counts with a sub-segment's counts removed."""
        return Counts(
            self.baseline_n - other.baseline_n,
            self.baseline_x - other.baseline_x,
            self.current_n - other.current_n,
            self.current_x - other.current_x,
        )

    @property
    def baseline_rate(self) -> float:
        """Bad events over units in the baseline window."""
        return self.baseline_x / self.baseline_n if self.baseline_n > 0 else 0.0

    @property
    def current_rate(self) -> float:
        """Bad events over units in the current window."""
        return self.current_x / self.current_n if self.current_n > 0 else 0.0


def _clamp(p: float) -> float:
    return min(max(p, _EPS), 1.0 - _EPS)


class Signal:
    """One detector bound to one segment table. Subclasses set `name` and `counts`."""

    name: ClassVar[str]
    unit: ClassVar[Unit] = "rate"
    # Effects at or above these are critical, then warning; anything smaller is info.
    severity_levels: ClassVar[tuple[float, float]] = (0.15, 0.07)

    def __init__(self, table: SegmentTable, cfg: ObserveConfig) -> None:
        self.table = table
        self.cfg = cfg

    @property
    def detail(self) -> str | None:
        """What distinguishes this detector among those of the same signal (a code)."""
        return None

    @property
    def label(self) -> str:
        """The signal's name, with its detail when it has one."""
        return self.name if self.detail is None else f"{self.name} {self.detail}"

    def counts(self, m: SegmentMetrics) -> Counts:
        """The segment's additive counts for this signal."""
        raise NotImplementedError

    def min_effect(self) -> float:
        """The smallest effect that matters (in the units of `effect`)."""
        raise NotImplementedError

    def effect(self, c: Counts) -> float:
        """Size of the change, positive when it got worse."""
        return c.current_rate - c.baseline_rate

    def p_value(self, c: Counts) -> float:
        """One-sided p-value of the change being real."""
        return rate_increase_p_value(c.baseline_n, c.baseline_x, c.current_n, c.current_x)

    def excess(self, c: Counts) -> float:
        """Bad events in the current window beyond what the baseline predicts."""
        if c.baseline_n <= 0:
            return 0.0
        return c.current_x - c.current_n * c.baseline_rate

    def enough_sample(self, c: Counts) -> bool:
        """Whether both windows hold enough units to test."""
        return c.baseline_n >= self.cfg.min_sample and c.current_n >= self.cfg.min_sample

    def material(self, c: Counts) -> bool:
        """Whether the effect is big enough to matter."""
        return self.effect(c) >= self.min_effect()

    def effect_var(self, c: Counts, effect: float) -> float:
        """Variance of the estimated `effect` of `c` if its true effect were `effect`.

        Evaluated at the hypothesis, not at the observed rate, so that a handful of
        attempts with no bad event at all still carries an honest error (and a baseline
        rate of zero, a code never seen before, gets half an event, Jeffreys).
        """
        p0 = (c.baseline_x + 0.5) / (max(c.baseline_n, 0.0) + 1.0)
        p1 = _clamp(p0 + effect)
        return p1 * (1.0 - p1) / max(c.current_n, 1.0) + p0 * (1.0 - p0) / (
            max(c.baseline_n, 0.0) + 1.0
        )

    def confirm(self, m: SegmentMetrics) -> bool:
        """A last check on the whole segment before it is flagged (default: none)."""
        return True

    def levels(self, m: SegmentMetrics, c: Counts) -> tuple[float, float]:
        """The baseline and current values an anomaly record shows."""
        return c.baseline_rate, c.current_rate

    def severity(self, m: SegmentMetrics, c: Counts) -> Severity:
        """How bad the change is, from its effect."""
        effect = self.effect(c)
        critical, warning = self.severity_levels
        return "critical" if effect >= critical else "warning" if effect >= warning else "info"

    def lost_approvals(self, m: SegmentMetrics, c: Counts) -> float:
        """Approvals the change cost, to rank incidents found on different signals.

        Bad events that are failures cost at most the segment's excess failures: a code
        or an error that replaced another decline lost no approval.
        """
        failures = m.current.failures - m.current.attempts * (
            m.baseline.failures / m.baseline.attempts if m.baseline.attempts else 0.0
        )
        return max(0.0, min(self.excess(c), failures))


class PaceSignal(Signal):
    """A count of attempts against the pace a reference ratio predicts (volume signals).

    Under no change, each attempt of a segment falls in the current window with
    probability r / (1 + r), where `ratio` is r (current over baseline): a change is a
    binomial tail, and a remainder is compared with Poisson likelihoods. Counts carry
    attempts only (`baseline_x` and `current_x` are unused).
    """

    unit = "attempts"
    # +1 when more attempts is worse (a surge), -1 when fewer is (a drop).
    direction: ClassVar[int] = -1

    def __init__(self, table: SegmentTable, cfg: ObserveConfig) -> None:
        super().__init__(table, cfg)
        self.reference = self.ratio()

    def ratio(self) -> float:
        """Current-window attempts per baseline attempt that no change predicts."""
        return self.table.duration_ratio

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts in each window."""
        return Counts(m.baseline.attempts, 0.0, m.current.attempts, 0.0)

    def expected(self, c: Counts) -> float:
        """Current-window attempts the reference ratio predicts."""
        return c.baseline_n * self.reference

    def effect(self, c: Counts) -> float:
        """Relative change in the direction that is worse (0.6 = 60% off the pace)."""
        exp = self.expected(c)
        return self.direction * (c.current_n / exp - 1.0) if exp > 0 else 0.0

    def p_value(self, c: Counts) -> float:
        """The tail of the current count, in the worse direction, under the pace."""
        total = c.baseline_n + c.current_n
        r = self.reference
        if total <= 0 or r <= 0:
            return 1.0
        share = r / (1.0 + r)
        mean = total * share
        sd = math.sqrt(total * share * (1.0 - share))
        if sd <= 0:
            return 1.0
        return normal_sf((self.direction * (c.current_n - mean) - 0.5) / sd)

    def effect_var(self, c: Counts, effect: float) -> float:
        """Variance of the estimated `effect` if the true one were `effect` (Poisson
        counts in both windows, half an event added)."""
        mu = self.expected(c)
        if mu <= 0:
            return math.inf
        ratio = max(1.0 + self.direction * effect, _EPS)
        return ratio / mu + ratio**2 / (max(c.baseline_n, 0.0) + 0.5)

    def excess(self, c: Counts) -> float:
        """Attempts off the pace, in the worse direction."""
        return self.direction * (c.current_n - self.expected(c))

    def enough_sample(self, c: Counts) -> bool:
        """The pace predicts at least `min_sample` current attempts."""
        return self.expected(c) >= self.cfg.min_sample

    def levels(self, m: SegmentMetrics, c: Counts) -> tuple[float, float]:
        """Attempts the pace predicts, and attempts seen."""
        return self.expected(c), c.current_n


Binder = Callable[[SegmentTable, ObserveConfig], Sequence[Signal]]


@dataclass(frozen=True)
class SignalSpec:
    """One registered signal: its name, what it measures, and how it binds to a table.

    `measures` is what its bad events are (classification reads it, never the name), and
    `loses_approvals` whether each of them is an approval lost;
    `unit` is how its anomaly values read. `bind` returns the signal's detectors for one
    table: usually one, one per candidate decline code for code emergence, none when the
    table cannot carry the signal.
    """

    name: str
    measures: Measure
    unit: Unit
    bind: Binder
    description: str
    # Its bad events are approvals lost (failed or missing attempts), so its flag is what
    # licenses a remedy that changes traffic.
    loses_approvals: bool = False
    # The share of `fdr` its Benjamini-Hochberg family runs at. The three signals a
    # payments team always watched (success rate, volume, latency) run at the full level;
    # the five that refine them share one more, so adding them costs quiet traffic one
    # more chance to look anomalous, not five.
    fdr_share: float = 1.0


def single(cls: type[Signal]) -> Binder:
    """A binder for a signal with one detector per table."""

    def bind(table: SegmentTable, cfg: ObserveConfig) -> Sequence[Signal]:
        return (cls(table, cfg),)

    return bind
