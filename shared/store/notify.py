"""The notifier's tables: each rule's open group and what it told, and the delivery queue (docs/notifications.md)."""

from __future__ import annotations

import json
from typing import Any

from shared.events import iso
from shared.notify_text import is_escalation
from shared.store import sets
from shared.store.dialect import Connection

ItemRow = tuple[str, str, str, str, str, int, str]  # rule, device_id, subject, kind, category, event_id, line
ToldRow = tuple[str, str, str, str, float, str, int, float | None, float | None]  # rule, device_id, subject, category,
# told_at, line, acked, escalate_at, escalated_at
FINAL = ("sent", "dropped")


def load_state(conn: Connection) -> tuple[list[tuple[str, float, float]], list[ItemRow], list[ToldRow]]:
    """Every open group (rule, opened_at, due_at), its items, and what each rule has told."""
    groups = conn.execute("SELECT rule, opened_at, due_at FROM notify_groups").fetchall()
    items = conn.execute("SELECT rule, device_id, subject, kind, category, event_id, line FROM notify_items").fetchall()
    told = conn.execute(f"SELECT {', '.join(TOLD_COLUMNS)} FROM notify_told").fetchall()
    return groups, items, told


def forget_rules_except(conn: Connection, rules: list[str]) -> None:
    """Drop the state of rules no longer configured (or edited: their key changed)."""
    marks = ",".join("?" * len(rules)) or "NULL"
    for table in ("notify_groups", "notify_items", "notify_told"):
        conn.execute(f"DELETE FROM {table} WHERE rule NOT IN ({marks})", rules)


def open_group(conn: Connection, rule: str, opened_at: float, due_at: float) -> None:
    """Start a rule's group."""
    conn.execute("INSERT INTO notify_groups (rule, opened_at, due_at) VALUES (?, ?, ?)", (rule, opened_at, due_at))


def close_group(conn: Connection, rule: str) -> None:
    """End a rule's group and its items (sent, or emptied by blips)."""
    conn.execute("DELETE FROM notify_items WHERE rule = ?", (rule,))
    conn.execute("DELETE FROM notify_groups WHERE rule = ?", (rule,))


ITEM_COLUMNS = ("rule", "device_id", "subject", "kind", "category", "event_id", "line")
ITEM_TYPES = ("text", "text", "text", "text", "text", "bigint", "text")
TOLD_COLUMNS = ("rule", "device_id", "subject", "category", "told_at", "line", "acked", "escalate_at", "escalated_at")
TOLD_TYPES = ("text", "text", "text", "text", "float8", "text", "int4", "float8", "float8")


def _last_per_key(rows: list[Any]) -> list[Any]:
    """One row per (rule, device_id, subject), the last given: a set statement may not touch a row twice."""
    return list({tuple(row[:3]): row for row in rows}.values())


def _upsert(conn: Connection, table: str, columns: tuple[str, ...], types: tuple[str, ...], rows: list[Any]) -> None:
    """Insert rows keyed by (rule, device_id, subject), replacing the other columns of an existing one: one set."""
    others = ", ".join(f"{c} = excluded.{c}" for c in columns[3:])
    picked = ", ".join(f"column{n}" for n in range(1, len(columns) + 1))
    sets.run(
        conn,
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picked} FROM ({{rows}}) AS v WHERE true"
        f" ON CONFLICT (rule, device_id, subject) DO UPDATE SET {others}",
        types,
        _last_per_key(rows),
    )


def _delete(conn: Connection, table: str, keys: list[tuple[str, str, str]]) -> None:
    """Delete the rows of these (rule, device_id, subject) keys: one set."""
    sets.run(
        conn,
        f"DELETE FROM {table} WHERE (rule, device_id, subject) IN"
        " (SELECT column1, column2, column3 FROM ({rows}) AS v)",
        ("text", "text", "text"),
        _last_per_key(keys),
    )


def put_items(conn: Connection, rows: list[ItemRow]) -> None:
    """Add or replace items of open groups."""
    _upsert(conn, "notify_items", ITEM_COLUMNS, ITEM_TYPES, rows)


def drop_items(conn: Connection, keys: list[tuple[str, str, str]]) -> None:
    """Remove items (rule, device_id, subject) from their groups: blips."""
    _delete(conn, "notify_items", keys)


def tell(conn: Connection, rows: list[ToldRow]) -> None:
    """Record what a rule's channel was told is wrong (or reminded of, again)."""
    _upsert(conn, "notify_told", TOLD_COLUMNS, TOLD_TYPES, rows)


def untell(conn: Connection, keys: list[tuple[str, str, str]]) -> None:
    """Forget what recovered (rule, device_id, subject)."""
    _delete(conn, "notify_told", keys)


def mark_escalated(
    conn: Connection, rule: str, keys: list[tuple[str, str]], now: float
) -> dict[tuple[str, str], tuple[str, str]]:
    """Compare-and-set: mark escalated now each of these (device_id, subject) of the rule still due, unacknowledged and
    not yet escalated; returns those marked, (category, line) by key, for the message queued in the same transaction."""
    conn.executemany(
        "UPDATE notify_told SET escalated_at = ?, escalate_at = NULL WHERE rule = ? AND device_id = ? AND subject = ?"
        " AND escalated_at IS NULL AND acked = 0 AND escalate_at <= ?",
        [(now, rule, device_id, subject, now) for device_id, subject in keys],
    )
    rows = conn.execute(
        "SELECT device_id, subject, category, line FROM notify_told WHERE rule = ? AND escalated_at = ?", (rule, now)
    ).fetchall()
    return {(device_id, subject): (category, line) for device_id, subject, category, line in rows}


def enqueue(
    conn: Connection, channel: str, title: str, body: str, notify_type: str, event_ids: list[int], now: float
) -> int:
    """Queue one message for a channel; returns its id."""
    cur = conn.execute(
        "INSERT INTO notifications (channel, status, created_at, next_attempt_at, title, body, notify_type, event_ids)"
        " VALUES (?, 'pending', ?, ?, ?, ?, ?, ?) RETURNING id",
        (channel, now, now, title, body, notify_type, json.dumps(event_ids)),
    )
    return int(cur.fetchone()[0])


def next_message(conn: Connection, channel: str) -> tuple[int, float, float, int, str, str, str] | None:
    """The channel's oldest undelivered message: (id, created_at, next_attempt_at, attempts, title, body, type)."""
    return conn.execute(
        "SELECT id, created_at, next_attempt_at, attempts, title, body, notify_type FROM notifications"
        " WHERE channel = ? AND status IN ('pending', 'failed') ORDER BY id LIMIT 1",
        (channel,),
    ).fetchone()


def record_attempt(
    conn: Connection, message_id: int, status: str, now: float, next_attempt_at: float, error: str | None
) -> None:
    """One delivery attempt's outcome: sent, failed (to be retried at next_attempt_at) or dropped."""
    conn.execute(
        "UPDATE notifications SET status = ?, attempts = attempts + 1, next_attempt_at = ?,"
        " last_error = COALESCE(?, last_error),"
        " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
        (status, next_attempt_at, error, status, now, message_id),
    )


def drop_message(conn: Connection, message_id: int, error: str) -> None:
    """Give up on a message without another attempt."""
    conn.execute("UPDATE notifications SET status = 'dropped', last_error = ? WHERE id = ?", (error, message_id))


def prune_notifications(conn: Connection, before: float) -> int:
    """Delete delivered or dropped messages created before `before`; returns how many."""
    return conn.execute(
        "DELETE FROM notifications WHERE created_at < ? AND status IN ('sent', 'dropped')", (before,)
    ).rowcount


def notifications(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The newest messages first, as the API shows them."""
    rows = conn.execute(
        "SELECT id, channel, status, attempts, created_at, sent_at, last_error, title, body, event_ids"
        " FROM notifications ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = ("id", "channel", "status", "attempts", "created_at", "sent_at", "last_error", "title", "body")
    out = []
    for row in rows:
        item = dict(zip(keys, row[:9], strict=True))
        item["created_at"], item["sent_at"] = iso(item["created_at"]), iso(item["sent_at"])
        item["event_ids"] = json.loads(row[9])
        item["escalation"] = is_escalation(item["title"])  # told to a rule's escalate_to: nobody acknowledged (§14)
        out.append(item)
    return out


def queue_stats(conn: Connection, now: float) -> dict[str, dict[str, float]]:
    """Per channel: messages by status, and the age of the oldest undelivered one (0 if none)."""
    stats: dict[str, dict[str, float]] = {}
    for channel, status, count, oldest in conn.execute(
        "SELECT channel, status, COUNT(*), MIN(created_at) FROM notifications GROUP BY channel, status"
    ):
        entry = stats.setdefault(channel, {"pending": 0, "failed": 0, "sent": 0, "dropped": 0, "oldest_age_s": 0.0})
        entry[status] = count
        if status not in FINAL:
            entry["oldest_age_s"] = max(entry["oldest_age_s"], now - oldest)
    return stats
