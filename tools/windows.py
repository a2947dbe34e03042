"""Which windows observe compares when nobody says: a pure function of the data's time span.

The loader uses it to cut its one pass over a file at the windows observe will ask for
(so the cube it builds serves them), and observe uses it to infer the windows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.contract import TimeWindow, utc

# A window ending after the minute of `last` cannot be written past this.
_LAST_MINUTE = datetime.max.replace(tzinfo=UTC, second=0, microsecond=0)


def windows_for_span(first: datetime, last: datetime) -> tuple[TimeWindow, TimeWindow] | None:
    """The last hour against up to a day before it (shorter data: last fifth vs the rest).

    `first` and `last` are the earliest and latest timestamps (naive ones are UTC). None
    when the data spans too little time to compare two windows, or ends in the last
    minute a datetime can hold.
    """
    if utc(last) >= _LAST_MINUTE:
        return None
    end = utc(last).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = utc(first).replace(second=0, microsecond=0)
    span = end - start
    if span >= timedelta(hours=2):
        split = end - timedelta(hours=1)
        start = max(start, split - timedelta(hours=24))
    else:
        current_len = max(timedelta(minutes=1), span / 5)
        split = end - timedelta(minutes=round(current_len.total_seconds() / 60))
        if split <= start:
            return None
    return TimeWindow(start=start, end=split), TimeWindow(start=split, end=end)
