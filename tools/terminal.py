"""Screens sized to the terminal: one console factory and one way to build a table.

- `make_console` prints at `$COLUMNS` when it is set, else at the terminal's width, else
  (a pipe, a log) at `PIPE_WIDTH` columns.
- `fitted_table` keeps every column a reader needs and drops the least important ones
  when the width cannot hold them all; cells fold onto more lines, they are never cut
  to `acq_…`.
- `segment_cell` writes a segment one `dimension=value` per line, so a segment wraps
  where a reader expects it to.

Cells are text the caller has already made safe (`tools.text.printable`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from tools.text import printable

if TYPE_CHECKING:  # the CLI imports this module to print `--help`: keep it light
    from tools.contract import Segment

# Columns of output that goes to a pipe or a file when $COLUMNS is not set.
PIPE_WIDTH = 120
# Space rich puts between two columns of a table without a box (padding 1 on each side).
COLUMN_GAP = 2


def terminal_width(stream: TextIO, environ: Mapping[str, str] | None = None) -> int | None:
    """The width to print at: `$COLUMNS`, else None for a terminal (rich measures it),
    else PIPE_WIDTH."""
    env = os.environ if environ is None else environ
    columns = env.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    isatty = getattr(stream, "isatty", None)
    return None if isatty is not None and isatty() else PIPE_WIDTH


def make_console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr) at the width `terminal_width` gives."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=terminal_width(stream))


@dataclass(frozen=True)
class Column:
    """A table column: its header, and when it goes.

    `drop` 0 means always shown; when the width is short, the column with the highest
    `drop` goes first.
    """

    header: str
    drop: int = 0
    justify: JustifyMethod = "left"
    # True: cells may wrap between words, so only the longest word must fit.
    wraps: bool = False


def _widest(column: Column, cells: Sequence[str], *, by_word: bool) -> int:
    """Width of the column's header and its longest cell line (or word, `by_word`)."""
    widest = len(column.header)
    for cell in cells:
        text = Text.from_markup(cell).plain
        pieces = text.split() if by_word else text.splitlines()
        widest = max(widest, *(len(p) for p in pieces), 0)
    return widest


def _fit(columns: Sequence[Column], need: Sequence[int], width: int) -> list[int]:
    """Indices of the columns whose `need`s fit in `width`, the most droppable gone first."""
    kept = list(range(len(columns)))
    while sum(need[i] for i in kept) + COLUMN_GAP * (len(kept) - 1) > width:
        droppable = [i for i in kept if columns[i].drop > 0]
        if not droppable:
            break  # what is left folds its cells
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    return kept


def fitted_table(
    width: int,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
) -> Table:
    """A borderless table of `rows` with the columns that fit in `width`.

    Each kept column gets at least its longest word (a wrapping column) or line, so a
    `dimension=value` is never cut in two; what width is left goes to the wrapping
    columns, the one closest to its unwrapped width first, up to that width.
    """
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    need = [_widest(c, cells[i], by_word=c.wraps) for i, c in enumerate(columns)]
    kept = _fit(columns, need, width)
    widths = {i: need[i] for i in kept}
    spare = width - sum(widths.values()) - COLUMN_GAP * (len(kept) - 1)
    natural = {i: _widest(columns[i], cells[i], by_word=False) for i in kept if columns[i].wraps}
    for i in sorted(natural, key=lambda i: (natural[i] - widths[i], i)):
        grow = max(0, min(spare, natural[i] - widths[i]))
        widths[i] += grow
        spare -= grow
    table = Table(
        title=title,
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for i in kept:
        table.add_column(
            columns[i].header, justify=columns[i].justify, overflow="fold", width=widths[i]
        )
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


def segment_cell(segment: Segment) -> str:
    """A segment for a table cell: one `dimension=value` per line, printable."""
    from tools.contract import format_segment

    if not segment:
        return format_segment(segment)
    return "\n".join(printable(format_segment({k: v})) for k, v in segment.items())
