"""Which columns of a transactions file are segment dimensions, and why the others are not.

One pure decision, `choose_dimensions`, from the file's columns, what the user asked for
(`--dimensions`), the scenario's list and a cheap profile of the candidate columns:

- **Asked for a list** (`--dimensions a,b,c`): exactly those, in that order.
- **Otherwise** the base is the scenario's `dimensions` (a scenario folder that lists
  them) or the contract's six defaults plus every extra column of *sensible cardinality*
  (below). `--dimensions +mcc,-currency` then adds to and removes from that base; a column
  added with `+` is used whatever its cardinality.

An extra column is used automatically when, in the first `PROBE_ROWS` rows of the file
(a bounded read: a 10-million-row file is not scanned twice), it has between 2 and
`MAX_VALUES` distinct non-empty values and does not look like an identifier (more
distinct values than `ID_LIKE_SHARE` of its non-empty rows, e.g. an `order_ref`). The
others are skipped with their reason. The bounds keep observe's leaf cube and its segment
tests proportional to what can be detected: a value needs tens of attempts per window
before a drop on it can be significant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tools.contract import DEFAULT_DIMENSIONS, TRANSACTION_COLUMNS

# Rows read to profile the candidate columns: the head of the file, never all of it.
PROBE_ROWS = 100_000
# An extra column with more distinct values than this (in the probe) is not used
# automatically; `+name` still adds it.
MAX_VALUES = 100
# ... nor one whose distinct values exceed this share of its non-empty rows (an id, a
# reference, a timestamp), once it has at least ID_LIKE_MIN_ROWS non-empty rows.
ID_LIKE_SHARE = 0.5
ID_LIKE_MIN_ROWS = 20

Origin = Literal["defaults", "scenario", "option"]


class DimensionSpecError(ValueError):
    """A `--dimensions` value that cannot be applied; `column` names the culprit."""

    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ColumnProfile:
    """What the probe saw of one column: rows read, non-empty values, distinct values."""

    rows: int
    non_empty: int
    distinct: int


@dataclass(frozen=True)
class SkippedDimension:
    """A column that could have been a dimension, and why it is not one."""

    name: str
    reason: str


@dataclass(frozen=True)
class DimensionChoice:
    """The dimensions a run segments by, the extra columns among them, and the skipped."""

    used: tuple[str, ...]
    added: tuple[str, ...]
    skipped: tuple[SkippedDimension, ...]
    origin: Origin


def _signed(requested: Sequence[str]) -> bool:
    """True for `+name`/`-name` adjustments, False for a plain list; never a mix."""
    signed = [item[:1] in ("+", "-") for item in requested]
    if any(signed) and not all(signed):
        plain = next(item for item, s in zip(requested, signed, strict=True) if not s)
        raise DimensionSpecError(
            plain,
            f"--dimensions: {plain!r} mixes a list with +name/-name; give a list (it "
            "replaces the dimensions) or only +name/-name (they adjust the defaults)",
        )
    return bool(requested) and all(signed)


def extra_columns(columns: Sequence[str]) -> list[str]:
    """The file's columns that are not CONTRACT.md section 1 columns, in file order."""
    return [c for c in columns if c not in TRANSACTION_COLUMNS]


def columns_to_probe(
    columns: Sequence[str], requested: Sequence[str] | None, scenario: Sequence[str] | None
) -> list[str]:
    """The extra columns whose cardinality the choice depends on (often none)."""
    if scenario is not None or (requested and not _signed(requested)):
        return []
    forced = {item[1:].strip() for item in requested or ()}
    return [c for c in extra_columns(columns) if c not in forced]


def _judge(profile: ColumnProfile | None) -> str | None:
    """Why a column is not a sensible dimension, or None when it is."""
    if profile is None or profile.rows == 0:
        return "no rows to profile"
    shown = f"{profile.distinct:,} values in the first {profile.rows:,} rows"
    if profile.non_empty == 0:
        return f"always empty in the first {profile.rows:,} rows"
    if profile.distinct < 2:
        return f"one value only in the first {profile.rows:,} rows: nothing to compare"
    if (
        profile.non_empty >= ID_LIKE_MIN_ROWS
        and profile.distinct > ID_LIKE_SHARE * profile.non_empty
    ):
        return f"looks like an identifier ({shown})"
    if profile.distinct > MAX_VALUES:
        return f"too many values ({shown}; at most {MAX_VALUES})"
    return None


def choose_dimensions(
    columns: Sequence[str],
    requested: Sequence[str] | None,
    scenario: Sequence[str] | None,
    profiles: Mapping[str, ColumnProfile],
) -> DimensionChoice:
    """The dimensions to segment by (see the module docstring for the rules).

    `columns` are the file's, `requested` the `--dimensions` items as given, `scenario`
    the scenario's list (None without one), `profiles` the probe of `columns_to_probe`.
    Raises DimensionSpecError for an adjustment that names no column or no dimension;
    names in a plain list are checked by the loader against the columns.
    """
    extras = extra_columns(columns)
    if requested and not _signed(requested):
        listed = tuple(dict.fromkeys(requested))
        return DimensionChoice(listed, tuple(d for d in listed if d in extras), (), "option")
    skipped: list[SkippedDimension] = []
    origin: Origin = "scenario" if scenario is not None else "defaults"
    base = list(scenario) if scenario is not None else list(DEFAULT_DIMENSIONS)
    if scenario is None:
        for name in extras:
            reason = _judge(profiles.get(name))
            if reason is None:
                base.append(name)
            else:
                skipped.append(SkippedDimension(name, reason))
    used = list(dict.fromkeys(base))
    available = [*TRANSACTION_COLUMNS, *extras]
    for item in requested or ():
        sign, name = item[0], item[1:].strip()
        if sign == "+":
            if name not in available:
                raise DimensionSpecError(
                    name, f"--dimensions +{name}: not a column (columns: {', '.join(available)})"
                )
            if name not in used:
                used.append(name)
            skipped = [s for s in skipped if s.name != name]
        elif name not in used:
            raise DimensionSpecError(
                name, f"--dimensions -{name}: not a dimension (dimensions: {', '.join(used)})"
            )
        else:
            used.remove(name)
            skipped.append(SkippedDimension(name, "removed by --dimensions"))
    if requested:
        origin = "option"
    return DimensionChoice(
        tuple(used), tuple(d for d in used if d in extras), tuple(skipped), origin
    )
