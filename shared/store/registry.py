"""The operators' registry (§7) and the web's requests to the ingest: the web's only writes beside notify tests.

How the web's writes and the ingest's coexist:

- Disjoint tables. The web writes only `registry`, `device_tags` and `ingest_commands` (and a
  test message in `notifications`, and on PostgreSQL the session key in `meta`), and in
  `devices` only the placeholder row of a registered device that never reported (first_seen
  NULL: inserted if no row exists, deleted while still a placeholder), so that every listing
  reads one indexed table. The ingest stays the single writer of every reported device's row,
  of `device_alerts` and `events`; its in-memory mirror (`vesper_ingest/fleet.py`) holds
  reported devices only, and its first write for a device is
  an upsert that turns a placeholder into a reported device. The ingest only reads `registry`
  and deletes the `ingest_commands` rows it has carried out.
- Both write with `BEGIN IMMEDIATE` (`dialect.write`) and a busy timeout, so one waits for the
  other instead of failing or deadlocking; every transaction is short (one request's rows, or
  one import's executemany), so neither holds the other up for long.
- The web never acts on the ingest's tables: to forget a device it queues `('forget', id)` in
  `ingest_commands`, and the ingest carries it out in its next sweep's transaction, updating
  its mirror in the same step (`vesper_ingest/commands.py`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from typing import Any

from shared.store import sets
from shared.store.dialect import Connection

FIELDS = ("name", "site", "tags", "notes", "heartbeat_timeout_s")
Entry = tuple[str | None, str | None, str, str | None, float | None]  # the FIELDS, tags as JSON text
UNREGISTERED: Entry = (None, None, "[]", None, None)
CHUNK = 500  # ids per IN (...) list
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

    rows = list(rows)
    conn.executemany(
        f"INSERT INTO registry ({names}) VALUES ({marks}) ON CONFLICT (device_id) DO UPDATE SET {updates}",
        map(encoded, rows),
    )
    conn.executemany("INSERT INTO devices (id) VALUES (?) ON CONFLICT (id) DO NOTHING", [row[:1] for row in rows])
    if tags_at is not None:
        _retag(conn, {row[0]: row[tags_at] for row in rows})


def _retag(conn: Connection, tags: dict[str, list[str]]) -> None:
    """Give each device exactly these tags, keeping tag_counts (the summary's) true by the difference."""
    ids = list(tags)
    delta: Counter[str] = Counter(tag for device_tags in tags.values() for tag in set(device_tags))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        delta.subtract(t for (t,) in conn.execute(f"SELECT tag FROM device_tags WHERE device_id IN ({marks})", chunk))
    conn.executemany("DELETE FROM device_tags WHERE device_id = ?", [(d,) for d in ids])
    conn.executemany(
        "INSERT INTO device_tags (tag, device_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(tag, device_id) for device_id, device_tags in tags.items() for tag in device_tags],
    )
    conn.executemany(
        "INSERT INTO tag_counts (tag, n) VALUES (?, ?) ON CONFLICT (tag) DO UPDATE SET n = tag_counts.n + excluded.n",
        [(tag, n) for tag, n in delta.items() if n],
    )


def forget(conn: Connection, device_id: str, now: float) -> bool:
    """The web's DELETE: drop the entry and, for a device the ingest knows, queue a forget; False if neither."""
    return forget_queued(conn, device_id, now)[0]


def forget_queued(conn: Connection, device_id: str, now: float) -> tuple[bool, int | None]:
    """forget, and the id of the forget command queued for the ingest (None when it never knew the device)."""
    registered = conn.execute("DELETE FROM registry WHERE device_id = ?", (device_id,)).rowcount > 0
    _retag(conn, {device_id: []})
    conn.execute("DELETE FROM devices WHERE id = ? AND first_seen IS NULL", (device_id,))
    known = conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is not None
    command = queue_command(conn, "forget", device_id, {}, now) if known else None
    return registered or known, command


def queue_command(conn: Connection, kind: str, device_id: str, args: dict[str, Any], now: float) -> int:
    """Ask the ingest to act (it carries commands out in its next sweep); returns the command's id."""
    cur = conn.execute(
        "INSERT INTO ingest_commands (kind, device_id, args, at) VALUES (?, ?, ?, ?) RETURNING id",
        (kind, device_id, json.dumps(args), now),
    )
    return int(cur.fetchone()[0])


def command_pending(conn: Connection, command_id: int) -> bool:
    """True until the ingest has carried the command out."""
    return conn.execute("SELECT 1 FROM ingest_commands WHERE id = ?", (command_id,)).fetchone() is not None


def pending_commands(conn: Connection) -> list[tuple[int, str, str, dict[str, Any]]]:
    """The web's requests not yet carried out, oldest first: (id, kind, device_id, args)."""
    rows = conn.execute("SELECT id, kind, device_id, args FROM ingest_commands ORDER BY id").fetchall()
    return [(command_id, kind, device_id, json.loads(args)) for command_id, kind, device_id, args in rows]


def command_done(conn: Connection, command_id: int) -> None:
    """Remove a request the ingest has carried out (or refused)."""
    conn.execute("DELETE FROM ingest_commands WHERE id = ?", (command_id,))


def forget_device_state(conn: Connection, device_id: str) -> None:
    """The ingest's side of a forget: its row, active alerts and what notifications hold of it (events stay)."""
    forget_devices_state(conn, [device_id])


def forget_devices_state(conn: Connection, device_ids: list[str]) -> None:
    """forget_device_state for many devices, one statement per table (a sweep's expired ids: shared/store/sets.py)."""
    for table in ("device_alerts", "alert_flaps", "notify_items", "notify_told"):
        sets.run(conn, f"DELETE FROM {table} WHERE device_id IN ({{rows}})", ("text",), [(d,) for d in device_ids])
    sets.run(conn, "DELETE FROM devices WHERE id IN ({rows})", ("text",), [(d,) for d in device_ids])
    # Registered again since the operator's DELETE (or since the sweep chose it): it stays listed, never reported.
    sets.run(
        conn,
        "INSERT INTO devices (id) SELECT device_id FROM registry WHERE device_id IN ({rows})"
        " ON CONFLICT (id) DO NOTHING",
        ("text",),
        [(d,) for d in device_ids],
    )


# Devices never registered and unheard since ?1, at most ?2: the heard ones oldest first by the last_seen index's
# range (above 0: registered devices that never reported, last_seen NULL, are not read), then those only ever
# known from a retained heartbeat (liveness unknown, last_seen NULL) by their first_seen, through the liveness index.
UNHEARD = (
    "SELECT id FROM (SELECT d.id FROM devices d"
    " WHERE COALESCE(d.last_seen, 0) > 0 AND COALESCE(d.last_seen, 0) <= ?1"
    " AND NOT EXISTS (SELECT 1 FROM registry r WHERE r.device_id = d.id) ORDER BY COALESCE(d.last_seen, 0), d.id"
    " LIMIT ?2) AS heard UNION ALL SELECT id FROM (SELECT d.id FROM devices d"
    " WHERE d.liveness = 'unknown' AND d.last_seen IS NULL AND d.first_seen <= ?1"
    " AND NOT EXISTS (SELECT 1 FROM registry r WHERE r.device_id = d.id) LIMIT ?2) AS known"
)


def unregistered_unheard(conn: Connection, before: float, limit: int) -> list[str]:
    """Up to `limit` ids of devices never registered and not heard from since `before` (retained-only: first_seen)."""
    return [device_id for (device_id,) in conn.execute(UNHEARD, (before, limit)).fetchall()[:limit]]


def kept_secret(conn: Connection, fresh: str) -> str:
    """The session key every web process shares, kept in the database: `fresh` if none was kept before."""
    conn.execute("INSERT INTO meta (key, value) VALUES ('session_key', ?) ON CONFLICT (key) DO NOTHING", (fresh,))
    return str(conn.execute("SELECT value FROM meta WHERE key = 'session_key'").fetchone()[0])
