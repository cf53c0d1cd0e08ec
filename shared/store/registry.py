"""The operators' registry (§7) and the web's requests to the ingest: the web's only writes beside notify tests.

How the web's writes and the ingest's coexist:

- Disjoint tables. The web writes only `registry` and `ingest_commands` (and a test message in
  `notifications`); the ingest stays the single writer of `devices`, `device_alerts` and
  `events`, so its in-memory mirror (`vesper_ingest/fleet.py`) stays true. The ingest only
  reads `registry` and deletes the `ingest_commands` rows it has carried out.
- Both write with `BEGIN IMMEDIATE` (`dialect.write`) and a busy timeout, so one waits for the
  other instead of failing or deadlocking; every transaction is short (one request's rows, or
  one import's executemany), so neither holds the other up for long.
- The web never acts on the ingest's tables: to forget a device it queues `('forget', id)` in
  `ingest_commands`, and the ingest carries it out in its next sweep's transaction, updating
  its mirror in the same step (`vesper_ingest/commands.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from typing import Any

from shared.store.dialect import Connection

FIELDS = ("name", "site", "tags", "notes", "heartbeat_timeout_s")
Entry = tuple[str | None, str | None, str, str | None, float | None]  # the FIELDS, tags as JSON text
UNREGISTERED: Entry = (None, None, "[]", None, None)
_SELECT = "SELECT device_id, name, site, tags, notes, heartbeat_timeout_s FROM registry"


def entry_dict(entry: Entry | None) -> dict[str, Any]:
    """A registry entry (None: not registered) as the fields of a device object."""
    name, site, tags, notes, timeout = entry or UNREGISTERED
    return {"name": name, "site": site, "tags": json.loads(tags), "notes": notes, "heartbeat_timeout_s": timeout}


def _text(value: str | None) -> str:
    """Operator text as a JSON string, escaped as json.dumps does (its C encoder, without dumps' overhead)."""
    return "null" if value is None else encode_basestring_ascii(value)


def entry_json(entry: Entry) -> str:
    """The same fields as JSON members (no braces); tags are JSON the web stored, the timeout a finite float."""
    name, site, tags, notes, timeout = entry
    seconds = "null" if timeout is None else repr(float(timeout))
    return (
        f'"name":{_text(name)},"site":{_text(site)},"tags":{tags},'
        f'"notes":{_text(notes)},"heartbeat_timeout_s":{seconds}'
    )


def registry_entries(conn: Connection) -> dict[str, Entry]:
    """Every registered device's entry, in one query."""
    return {row[0]: row[1:] for row in conn.execute(_SELECT)}


def registry_entry(conn: Connection, device_id: str) -> Entry | None:
    """One device's entry, or None if it is not registered."""
    row = conn.execute(_SELECT + " WHERE device_id = ?", (device_id,)).fetchone()
    return None if row is None else row[1:]


def registered_ids(conn: Connection) -> set[str]:
    """The ids of every registered device."""
    return {row[0] for row in conn.execute("SELECT device_id FROM registry")}


def put_entry(conn: Connection, device_id: str, fields: dict[str, Any], now: float) -> None:
    """Create or wholly replace one device's entry (`fields` holds FIELDS, tags as a list)."""
    put_entries(conn, list(FIELDS), [(device_id, *(fields[f] for f in FIELDS))], now)


def put_entries(conn: Connection, columns: list[str], rows: Iterable[tuple[Any, ...]], now: float) -> None:
    """Upsert (device_id, *columns) rows: the given columns are replaced, the others kept (tags as lists)."""
    unknown = set(columns) - set(FIELDS)
    if unknown:
        raise ValueError(f"not registry fields: {sorted(unknown)}")
    tags_at = columns.index("tags") + 1 if "tags" in columns else None
    names = ", ".join(["device_id", *columns, "updated_at"])
    marks = ", ".join("?" * (len(columns) + 2))
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*columns, "updated_at"])

    def encoded(row: tuple[Any, ...]) -> tuple[Any, ...]:
        if tags_at is not None:
            row = (*row[:tags_at], json.dumps(row[tags_at]), *row[tags_at + 1 :])
        return (*row, now)

    conn.executemany(
        f"INSERT INTO registry ({names}) VALUES ({marks}) ON CONFLICT (device_id) DO UPDATE SET {updates}",
        map(encoded, rows),
    )


def forget(conn: Connection, device_id: str, now: float) -> bool:
    """The web's DELETE: drop the entry and, for a device the ingest knows, queue a forget; False if neither."""
    registered = conn.execute("DELETE FROM registry WHERE device_id = ?", (device_id,)).rowcount > 0
    known = conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is not None
    if known:
        conn.execute("INSERT INTO ingest_commands (kind, device_id, at) VALUES ('forget', ?, ?)", (device_id, now))
    return registered or known


def pending_commands(conn: Connection) -> list[tuple[int, str, str]]:
    """The web's requests not yet carried out, oldest first: (id, kind, device_id)."""
    return conn.execute("SELECT id, kind, device_id FROM ingest_commands ORDER BY id").fetchall()


def command_done(conn: Connection, command_id: int) -> None:
    """Remove a request the ingest has carried out (or refused)."""
    conn.execute("DELETE FROM ingest_commands WHERE id = ?", (command_id,))


def forget_device_state(conn: Connection, device_id: str) -> None:
    """The ingest's side of a forget: its row, active alerts and what notifications hold of it (events stay)."""
    for table in ("device_alerts", "notify_items", "notify_told"):
        conn.execute(f"DELETE FROM {table} WHERE device_id = ?", (device_id,))
    conn.execute("DELETE FROM devices WHERE id = ?", (device_id,))
