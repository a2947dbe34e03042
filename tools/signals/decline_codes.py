"""Decline-code emergence: one decline code's share of attempts rising, or a code appearing.

Bound once per candidate code of the table (`SegmentTable.codes`: the codes whose share
of all attempts rose, at p <= `metrics.CANDIDATE_CODE_P`, at most
`metrics.MAX_CANDIDATE_CODES` of them), all in one
Benjamini-Hochberg family. Material when the code's share rises by `min_effect_pp`, or by
`code_new_min_pp` for a code that is new: absent from a baseline that would have shown it
(at its current share, the baseline would have held at least `NEW_CODE_EXPECTED`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tools.config import ObserveConfig
from tools.metrics import SegmentMetrics, SegmentTable
from tools.signals.base import Counts, Signal, SignalSpec
from tools.signals.names import DECLINE_CODE, FAILURES

NEW_CODE_EXPECTED = 5.0


class DeclineCode(Signal):
    """Attempts ending with one decline code, over attempts."""

    name = DECLINE_CODE

    def __init__(self, table: SegmentTable, cfg: ObserveConfig, index: int) -> None:
        super().__init__(table, cfg)
        self.index = index
        self.code = table.codes[index]

    @property
    def detail(self) -> str:
        """The decline code."""
        return self.code

    def counts(self, m: SegmentMetrics) -> Counts:
        """Attempts and attempts with this code in each window."""
        return Counts(
            m.baseline.attempts,
            m.baseline.codes[self.index],
            m.current.attempts,
            m.current.codes[self.index],
        )

    def min_effect(self) -> float:
        """A rise of `min_effect_pp` percentage points of attempts."""
        return self.cfg.min_effect_pp / 100.0

    def is_new(self, c: Counts) -> bool:
        """Absent from a baseline large enough to have shown it."""
        return c.baseline_x == 0 and c.baseline_n * c.current_rate >= NEW_CODE_EXPECTED

    def material(self, c: Counts) -> bool:
        """Risen by the minimum, or new and risen by the new-code minimum."""
        effect = self.effect(c)
        return effect >= self.min_effect() or (
            self.is_new(c) and effect >= self.cfg.code_new_min_pp / 100.0
        )


def bind(table: SegmentTable, cfg: ObserveConfig) -> Sequence[DeclineCode]:
    """One detector per candidate code of the table."""
    return tuple(DeclineCode(table, cfg, i) for i in range(len(table.codes)))


SIGNAL = SignalSpec(
    name=DECLINE_CODE,
    measures=FAILURES,
    unit="rate",
    bind=bind,
    description="one decline code's share of attempts (a code rising, or new)",
    fdr_share=0.2,
)
