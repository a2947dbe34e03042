"""Numbers are never invented: every figure in an answer must come from a tool result.

`check_figures` lists the figures of an answer that no tool result of the turn contains.
A figure matches a result value printed at the figure's precision, as it is or as a
percentage (a rate of 0.9123 is "91.2%"); times of day and dates must appear in a result's
text. Bare integers below 10 ("two processors", "step 3") are counts of things, not
measurements, and are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# A time of day or an ISO date: checked as text.
_TIME = re.compile(
    r"(?<![\w:])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?Z?)?|\b\d{1,2}:\d{2}\b"
)
# A number not glued to a word (acq_2, p95, 3DS, 1A are names), with an optional unit.
_FIGURE = re.compile(r"(?<![\w.\-])[-−+]?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s?(%|pp|ms)?(?![\w])")
_RESULT_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
SMALL_COUNT = 10


@dataclass(frozen=True)
class FigureCheck:
    """The figures an answer states, and those no tool result of the turn supports."""

    figures: tuple[str, ...]
    unverified: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """True when every figure was found in a tool result."""
        return not self.unverified


def _result_values(results: Iterable[str]) -> tuple[set[str], list[float]]:
    text_tokens: set[str] = set()
    values: list[float] = []
    for text in results:
        text_tokens.update(m.group(0) for m in _TIME.finditer(text))
        for m in _RESULT_NUMBER.finditer(text):
            try:
                values.append(abs(float(m.group(0))))
            except ValueError:
                continue
    return text_tokens, values


def _matches(value: float, decimals: int, values: list[float]) -> bool:
    want = f"{value:.{decimals}f}"
    # A result holds rates as fractions and some figures in percent already: try both.
    return any(f"{c:.{decimals}f}" == want for x in values for c in (x, x * 100))


def check_figures(answer: str, results: Iterable[str]) -> FigureCheck:
    """Which figures of `answer` appear in none of `results` (tool outputs of the turn)."""
    results = list(results)
    text_tokens, values = _result_values(results)
    joined = "\n".join(results)
    figures: list[str] = []
    unverified: list[str] = []
    for m in _TIME.finditer(answer):
        figures.append(m.group(0))
        if m.group(0) not in joined and m.group(0) not in text_tokens:
            unverified.append(m.group(0))
    rest = _TIME.sub(" ", answer)
    for m in _FIGURE.finditer(rest):
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        value = float(whole.replace(",", "") + ("." + frac if frac else ""))
        if unit is None and frac is None and value < SMALL_COUNT:
            continue
        figures.append(m.group(0).strip())
        if not _matches(value, len(frac or ""), values):
            unverified.append(m.group(0).strip())
    return FigureCheck(tuple(figures), tuple(unverified))
