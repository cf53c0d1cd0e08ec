"""`python -m shared.copydb SQLITE_PATH POSTGRES_URL`: move a Vesper database from SQLite to an empty PostgreSQL.

Stop the ingest and the web first. The SQLite file is read in one snapshot (migrated first if its
schema is behind: that one step writes to it), PostgreSQL gets the current schema and every row in
one transaction, ids kept and each id sequence set past the highest id SQLite ever gave. Exit 0
copied, 1 a database failed (nothing copied), 2 refused: usage, no such file, a non-empty target.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from shared.store import copy, dialect, schema
from shared.store.dialect import Connection

USAGE = "usage: python -m shared.copydb SQLITE_PATH POSTGRES_URL  (the URL: postgresql://… or postgres://…)"


class Refused(Exception):
    """Nothing was copied, on purpose: the operator's input needs a change (exit 2)."""


def open_source(path: Path) -> Connection:
    """The SQLite database read-only, migrated first (writable, briefly) if its schema is behind this version's."""
    if not path.is_file():  # dialect.connect would create an empty database there
        raise Refused(f"no SQLite database at {path}")
    src = dialect.connect(path, readonly=True)
    try:
        version = dialect.schema_version(src)
    finally:
        src.close()
    latest = len(schema.MIGRATIONS)
    if version == 0:  # every Vesper process migrates at start: this is some other file, to be left alone
        raise Refused(f"{path} holds no Vesper schema (schema version 0)")
    if version > latest:
        raise Refused(f"{path} has schema version {version}, newer than this Vesper's {latest}")
    if version < latest:
        writable = dialect.connect(path)
        try:
            schema.migrate(writable)
        finally:
            writable.close()
    return dialect.connect(path, readonly=True)


def run(path: Path, url: str) -> copy.Copied:
    """Open both sides, create PostgreSQL's schema, copy, printing each table as it is done."""
    src = open_source(path)
    try:
        dst = dialect.connect(url)
        try:
            schema.migrate(dst)
            return copy.copy_all(src, dst, done=lambda table, n: print(f"{table}: {rows(n)}", flush=True))
        except copy.NotEmpty as exc:
            raise Refused(f"{exc}; copy only into an empty database") from exc
        finally:
            dst.close()
    finally:
        src.close()


def rows(n: int) -> str:
    """A count of rows as the report writes it: 12,345 rows, 1 row."""
    return f"{n:,} row" + ("" if n == 1 else "s")


def one_line(exc: BaseException) -> str:
    """An error as one line: its type, its message's lines (psycopg's carry DETAIL and HINT lines), its notes."""
    lines = [line.strip() for line in [*str(exc).splitlines(), *getattr(exc, "__notes__", ())] if line.strip()]
    return f"{type(exc).__name__}: {'; '.join(lines)}" if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the copy; the exit status (0 copied, 1 a database error, 2 refused or a usage error)."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if len(args) != 2 or not args[1].startswith(dialect.URL_SCHEMES) or args[0].startswith(dialect.URL_SCHEMES):
        print(USAGE, file=sys.stderr)
        return 2
    logging.getLogger("psycopg").setLevel(logging.ERROR)  # its warning of a failed pipeline repeats our one line
    started = time.monotonic()
    try:
        copied = run(Path(args[0]), args[1])
    except Refused as exc:
        print(f"copydb: refused: {exc}", file=sys.stderr)
        return 2
    except copy.ERRORS as exc:
        print(f"copydb: failed, nothing copied: {one_line(exc)}", file=sys.stderr)
        return 1
    after = copied.next_ids.get("events", 1)
    print(
        f"total: {rows(copied.total)} in {len(copied.rows)} tables, {time.monotonic() - started:.1f} s;"
        f" new events get ids from {after:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
