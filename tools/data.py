"""Reading transactions (CONTRACT.md section 1) and scenario folders (section 2) into DuckDB.

This is the only loader in payops: the CLI, observe, chat tools, evals and benchmarks all
come through `load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tools.contract import DEFAULT_DIMENSIONS, ScenarioSpec

TRANSACTIONS_TABLE = "transactions"


class DataError(Exception):
    """Bad input a user can act on: names the file, line and column where known."""

    def __init__(
        self,
        file: Path | str,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """`file, line N, column C: reason`, with the parts that are known."""
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.reason}"


@dataclass
class Dataset:
    """Validated transactions loaded into an in-memory DuckDB table `transactions`.

    Columns: txn_id, ts (TIMESTAMP, UTC, naive), every dimension as VARCHAR ('' when
    empty), amount_minor BIGINT, status VARCHAR, decline_code VARCHAR ('' when none),
    latency_ms BIGINT, three_ds VARCHAR ('' when absent), is_retry BOOLEAN, and any extra
    string columns of the file as VARCHAR.
    """

    conn: duckdb.DuckDBPyConnection
    source: Path
    dimensions: list[str]
    rows: int
    scenario: ScenarioSpec | None = None
    quarantined: int = 0
    quarantine_path: Path | None = None
    columns: list[str] = field(default_factory=list)

    table: str = TRANSACTIONS_TABLE


def default_dimensions() -> list[str]:
    """The contract's default segment dimensions."""
    return list(DEFAULT_DIMENSIONS)


def load(
    path: Path,
    *,
    lenient: bool = False,
    dimensions: list[str] | None = None,
    quarantine_dir: Path | None = None,
) -> Dataset:
    """Load a transactions file or a scenario folder; raise DataError on bad input."""
    raise NotImplementedError
