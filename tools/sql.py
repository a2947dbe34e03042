"""Named, parameterised DuckDB queries: every SQL statement payops runs lives here.

User values never go into SQL text: they are bound as parameters. Identifiers that come
from data (dimension and column names) are quoted with `ident`.
"""

from __future__ import annotations

from collections.abc import Mapping


def ident(name: str) -> str:
    """Quote an identifier (a column name from user data) for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def segment_filter(segment: Mapping[str, str], prefix: str = "seg") -> tuple[str, dict[str, str]]:
    """A WHERE fragment matching `segment` and its named parameters (`TRUE` for all traffic).

    Dimension names are quoted identifiers; values are bound as `$<prefix><i>`.
    """
    if not segment:
        return "TRUE", {}
    clauses: list[str] = []
    params: dict[str, str] = {}
    for i, (dim, value) in enumerate(sorted(segment.items())):
        name = f"{prefix}{i}"
        clauses.append(f"{ident(dim)} = ${name}")
        params[name] = value
    return " AND ".join(clauses), params


# --- routes (tools/routes.py) ----------------------------------------------------------
# Format with `table` (ident) and `where` (segment_filter on the segment WITHOUT its
# processor dimension). Bind $baseline_start, $baseline_end, $current_start, $current_end
# (naive UTC; windows are half-open) plus the segment parameters.
ROUTE_STATS = """
SELECT processor,
       count(*) FILTER (WHERE ts >= $current_start AND ts < $current_end) AS attempts,
       count(*) FILTER (WHERE ts >= $current_start AND ts < $current_end
                          AND status = 'approved') AS approved,
       count(*) FILTER (WHERE ts >= $current_start AND ts < $current_end
                          AND status = 'error') AS errors,
       count(*) FILTER (WHERE ts >= $baseline_start AND ts < $baseline_end) AS baseline_attempts,
       count(*) FILTER (WHERE ts >= $baseline_start AND ts < $baseline_end
                          AND status = 'approved') AS baseline_approved
FROM {table}
WHERE ({where})
  AND ((ts >= $baseline_start AND ts < $baseline_end)
       OR (ts >= $current_start AND ts < $current_end))
GROUP BY processor
ORDER BY processor
"""

# Format with `table` and `where` (segment_filter on the FULL segment). Bind $current_start,
# $current_end and the segment parameters. `decline_codes` is a MAP code -> failures (NULL
# when the segment has none); `total_attempts` counts every current-window attempt.
SEGMENT_DETAIL = """
SELECT count(*) AS total_attempts,
       count(*) FILTER (WHERE ({where}) AND three_ds = 'failed') AS three_ds_failed,
       histogram(decline_code) FILTER (WHERE ({where}) AND status <> 'approved'
                                         AND decline_code <> '') AS decline_codes
FROM {table}
WHERE ts >= $current_start AND ts < $current_end
"""
