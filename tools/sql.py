"""Named, parameterised DuckDB queries: every SQL statement payops runs lives here.

User values never go into SQL text: they are bound as parameters. Identifiers that come
from data (dimension and column names) are quoted with `ident`.
"""

from __future__ import annotations


def ident(name: str) -> str:
    """Quote an identifier (a column name from user data) for DuckDB."""
    return '"' + name.replace('"', '""') + '"'
