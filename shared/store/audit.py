"""The audit log (§14): one row per state-changing request and per sign-in; read newest first, pruned by age.

The web writes an entry after each such request (vesper_web/audit_trail.py); admins read pages of it through
GET /api/audit. A page's cursor is the last row's (at, id), so rows written while an admin pages (always newer)
neither repeat nor push others out of place, and rows sharing one instant are split by id, never skipped.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from typing import Any

from shared.events import iso
from shared.store.dialect import Connection, read

# The longest text each column keeps (whatever a caller passes): the columns hold untrusted strings.
CAPS = {"actor": 64, "kind": 16, "role": 16, "address": 64, "method": 8, "action": 64, "target": 256, "detail": 300}
CURSOR = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?_[0-9]{1,18}")  # the last row's at (repr) and id
COLUMNS = ("at", "actor", "kind", "role", "address", "method", "action", "target", "status", "detail")


@dataclass(frozen=True)
class Entry:
    """One audited request: when, who (actor, kind, role, address), what (method, action, target), its status."""

    at: float
    actor: str
    kind: str
    role: str | None
    address: str | None
    method: str
    action: str
    target: str | None
    status: int
    detail: str | None = None


def _capped(name: str, value: Any) -> Any:
    return value[: CAPS[name]] if isinstance(value, str) and name in CAPS else value


def record(conn: Connection, entry: Entry) -> int:
    """Store one entry (each text cut to its column's cap); returns its id."""
    values = tuple(_capped(name, value) for name, value in zip(COLUMNS, astuple(entry), strict=True))
    cur = conn.execute(
        f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) RETURNING id", values
    )
    return int(cur.fetchone()[0])


def _cursor(cursor: str | None) -> tuple[float, int] | None:
    """The (at, id) a cursor carries (the last row shown); one this module did not give is a ValueError."""
    if cursor is None:
        return None
    if not CURSOR.fullmatch(cursor):
        raise ValueError("cursor")
    at, _, last = cursor.partition("_")
    return float(at), int(last)


def _where(
    start: float | None, end: float | None, actor: str | None, action: str | None, after: tuple[float, int] | None
) -> tuple[str, list[Any]]:
    terms = [(start, "at >= ?"), (end, "at < ?"), (actor, "actor = ?"), (action, "action = ?")]
    where = [sql for value, sql in terms if value is not None]
    args: list[Any] = [value for value, _ in terms if value is not None]
    if after is not None:
        where.append("at <= ? AND (at < ? OR id < ?)")  # after the last row shown: older, or as old and smaller id
        args += [after[0], after[0], after[1]]
    return (" WHERE " + " AND ".join(where)) if where else "", args


def entries(
    conn: Connection, *, start: float | None = None, end: float | None = None, actor: str | None = None,
    action: str | None = None, limit: int = 100, cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """Entries in [start, end) by this actor and action (None: any), newest first, and the next page's cursor.

    A cursor this function did not give is a ValueError.
    """
    where, args = _where(start, end, actor, action, _cursor(cursor))
    with read(conn):
        rows = conn.execute(
            f"SELECT id, {', '.join(COLUMNS)} FROM audit{where} ORDER BY at DESC, id DESC LIMIT ?", (*args, limit + 1)
        ).fetchall()
    page = rows[:limit]
    following = f"{page[-1][1]!r}_{page[-1][0]}" if len(rows) > limit else None
    return [entry_dict(row) for row in page], following


def entry_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A stored row (id first, then COLUMNS) as the API shows it: the time as ISO-8601 UTC."""
    found = dict(zip(("id", *COLUMNS), row, strict=True))
    found["at"] = iso(found["at"])
    return found


def prune(conn: Connection, before: float) -> int:
    """Drop entries older than `before` (auth.audit_retention_days); returns how many went."""
    return int(conn.execute("DELETE FROM audit WHERE at < ?", (before,)).rowcount)
