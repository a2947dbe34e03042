"""Time windows the chat tools accept, as short text a person or a model can write.

`current` and `baseline` are observe's windows. Everything else is relative to the end of
the current window (the data's "now"), so "the last 30 minutes" means the same thing
whenever the question is asked:

    current | baseline | last 30m | last 2h | since 14:00 | 13:00-14:00 | START/END (ISO)
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from tools.contract import TimeWindow, iso
from tools.observe import parse_window

WINDOW_GRAMMAR = (
    "'current', 'baseline', 'last 30m', 'last 2h', 'since 14:00', '13:00-14:00' "
    "or START/END in ISO-8601"
)

_LAST = re.compile(r"^last\s+(\d+)\s*(m|min|mins|minutes?|h|hr|hrs|hours?)$")
_SINCE = re.compile(r"^since\s+(\d{1,2}):(\d{2})$")
_BETWEEN = re.compile(r"^(\d{1,2}):(\d{2})\s*(?:-|to)\s*(\d{1,2}):(\d{2})$")


class WindowSpecError(ValueError):
    """A window the tools cannot read; the message shows the accepted forms."""


def _at(day_of: datetime, hour: int, minute: int) -> datetime:
    if hour > 23 or minute > 59:
        raise WindowSpecError(f"no such time of day {hour:02d}:{minute:02d}")
    return day_of.replace(hour=hour, minute=minute, second=0, microsecond=0)


def _on_or_before(now: datetime, hour: int, minute: int) -> datetime:
    """That time of day on the last day it had come by `now`."""
    at = _at(now, hour, minute)
    return at if at < now else at - timedelta(days=1)


def resolve_window(spec: str | None, baseline: TimeWindow, current: TimeWindow) -> TimeWindow:
    """The window `spec` names; None means the current window.

    Relative forms end at (or are dated by) the end of `current`.
    """
    text = " ".join((spec or "current").strip().lower().split())
    now = current.end
    if text in ("current", "now", ""):
        return current
    if text == "baseline":
        return baseline
    if m := _LAST.match(text):
        amount = int(m.group(1))
        minutes = amount * 60 if m.group(2).startswith("h") else amount
        if minutes <= 0:
            raise WindowSpecError(f"window {spec!r} is empty")
        return TimeWindow(start=now - timedelta(minutes=minutes), end=now)
    if m := _SINCE.match(text):
        return TimeWindow(start=_on_or_before(now, int(m.group(1)), int(m.group(2))), end=now)
    if m := _BETWEEN.match(text):
        end = _on_or_before(now + timedelta(seconds=1), int(m.group(3)), int(m.group(4)))
        start = _at(end, int(m.group(1)), int(m.group(2)))
        if start >= end:
            start -= timedelta(days=1)
        return TimeWindow(start=start, end=end)
    if "/" in text:
        try:
            return parse_window(spec or "", "window")
        except ValueError as exc:
            raise WindowSpecError(str(exc)) from None
    raise WindowSpecError(f"cannot read window {spec!r}; use {WINDOW_GRAMMAR}")


def window_text(window: TimeWindow) -> str:
    """`2026-03-01T10:00:00Z/2026-03-01T11:00:00Z`: how results name a window."""
    return f"{iso(window.start)}/{iso(window.end)}"
