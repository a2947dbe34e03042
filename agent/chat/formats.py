"""How chat prints figures, in one place: the stub's answers, the tables a person sees and
`eval --chat`'s expected facts all use these, so "91.2%" means the same everywhere."""

from __future__ import annotations

from typing import Any

MISSING = "–"


def pct(x: Any) -> str:
    """A rate (fraction) as a percentage with one decimal: 0.9123 -> `91.2%`."""
    return MISSING if x is None else f"{x * 100:.1f}%"


def pp(x: Any) -> str:
    """A change already in percentage points, signed: -25.55 -> `-25.6 pp`."""
    return MISSING if x is None else f"{x:+.1f} pp"


def count(x: Any) -> str:
    """A count or an amount, rounded, with thousands separators: 1292.4 -> `1,292`."""
    return MISSING if x is None else f"{x:,.0f}"


def clock(ts: Any) -> str:
    """The time of day of a tools' UTC timestamp: `2026-03-01T10:15:00Z` -> `10:15`."""
    return ts[11:16] if isinstance(ts, str) and len(ts) >= 16 else str(ts)
