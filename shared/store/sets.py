"""Statements over many rows at once, one statement per set: the rows go where the SQL says `{rows}`.

`{rows}` stands where a query may: `INSERT INTO t (…) {rows}`, `FROM ({rows}) AS v`, `IN ({rows})`,
its columns named column1, column2, … on both engines; each dialect's run_set binds them. SQLite gets
multi-row VALUES, in pieces of power-of-two sizes under its limit of variables (a few statement texts
serve every batch size); PostgreSQL one array per column through unnest, so the statement has a
parameter per column, not per value (psycopg parses and adapts each placeholder in Python: a VALUES
of 6,000 of them cost more than the work). The rows of one statement must not repeat a key an upsert conflicts on
(PostgreSQL refuses to update a row twice in one statement): callers pass one row per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.store.engine import Connection


def run(conn: Connection, sql: str, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Run `sql` over the rows, whose columns have these PostgreSQL types (bigint, float8, text, bytea …)."""
    if rows:
        conn.dialect.run_set(conn, sql, types, rows)


def pieces(n: int, most: int) -> list[int]:
    """n rows as statements of power-of-two sizes up to `most`, largest first: one SQL text per size, not per n.

    A text per row count is a statement prepared anew for every batch size, and kept in the connection's
    cache of 128: up to ~400 KiB each at 1,000 rows (bench/soak.py's ingest grew in steps until it was full).
    """
    top = 1 << (max(1, most).bit_length() - 1)
    rest = n % top
    return [top] * (n // top) + [1 << b for b in reversed(range(rest.bit_length())) if rest >> b & 1]
