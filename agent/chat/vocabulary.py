"""The names that occur in the loaded data, and how a question's or a tool argument's
spelling is matched to them: by meaning, as every identifier is (tools/identifiers.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tools.identifiers import normalize_identifier, resolve_identifier


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
        """The data's spelling of `value` in `dimension`; `value` in its kept spelling when
        it does not occur (or names two values), so it matches nothing and fails closed."""
        known = self.values.get(dimension, {})
        if value in known:
            return value
        return resolve_identifier(value, known) or normalize_identifier(value)

    def canonical_dimension(self, name: str) -> str | None:
        """The data's dimension called `name` (any case, a space for `_`), or None."""
        return resolve_identifier(normalize_identifier(name).replace(" ", "_"), self.values)
