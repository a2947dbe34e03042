"""The names that occur in the loaded data, and how a question's or a tool argument's
spelling is matched to them (by meaning: NFKC and case folding)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass


def fold(text: str) -> str:
    """Text compared by meaning, not spelling: Unicode NFKC, case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class Vocabulary:
    """The names that occur in the data: dimension values (with attempts) and failure codes.

    The stub reads questions with it, and tool arguments are normalised with it, so
    `BR`, `br` and a full-width `ＢＲ` name the same issuer country.
    """

    values: Mapping[str, Mapping[str, int]]
    codes: frozenset[str]
    processors: tuple[str, ...]

    @property
    def dimensions(self) -> list[str]:
        """The segment dimensions of the data, in order."""
        return list(self.values)

    def canonical(self, dimension: str, value: str) -> str:
        """The data's spelling of `value` in `dimension` (unchanged when it does not occur)."""
        known = self.values.get(dimension, {})
        if value in known:
            return value
        folded = fold(value.strip())
        for candidate in known:
            if fold(candidate) == folded:
                return candidate
        return value.strip()

    def canonical_dimension(self, name: str) -> str | None:
        """The data's dimension called `name` (any case), or None."""
        folded = fold(name.strip()).replace(" ", "_")
        return next((d for d in self.values if fold(d) == folded), None)
