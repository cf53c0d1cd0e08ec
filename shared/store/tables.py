"""The schema in force, described once: each engine's DDL is generated from it (its dialect names the types).

SQLite keeps its numbered migrations (schema.py) for the files that exist; tests/test_store_engines.py
proves that what they build equals this description, and PostgreSQL creates it in one step.
q's index is each engine's own (search.py DDL: SQLite's FTS5 table and triggers, PostgreSQL's pg_trgm indexes):
create_all ends with it; the engines' schemas are compared without it, SQLite's migrations against it too.
A new migration changes this description too, and AT.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.severity import standing_sql
from shared.store import search
from shared.store.engine import Dialect

AT = 14  # the migration of schema.py that this description equals


@dataclass(frozen=True)
class Column:
    """A column: its name, its type (text, real, int, bigint, blob, serial: an id the engine gives), the rest in SQL."""

    name: str
    type: str
    rest: str = ""


@dataclass(frozen=True)
class Index:
    """An index: its name, its columns, which of them are expressions, (a partial index) which rows it holds, and
    (one engine's own) which engine has it."""

    name: str
    terms: tuple[str, ...]
    expressions: tuple[str, ...] = ()
    where: str = ""
    engine: str = ""


@dataclass(frozen=True)
class Table:
    """A table: its columns in order, its primary key (if not a column's), its indexes."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    indexes: tuple[Index, ...] = ()


def C(name: str, type_: str, rest: str = "") -> Column:  # noqa: N802 - reads as a table row
    """A column (short, so the tables below read as tables)."""
    return Column(name, type_, rest)


NN = "NOT NULL"
LIVENESS = "NOT NULL DEFAULT 'unknown' CHECK (liveness IN ('online', 'offline', 'unknown'))"
ALERT_STATE = "NOT NULL CHECK (state IN ('WARNING', 'CRITICAL', 'FAILED'))"
ITEM_KIND = "NOT NULL CHECK (kind IN ('problem', 'resolved', 'event'))"
EPISODE_KIND = "NOT NULL CHECK (kind IN ('outage', 'incident', 'blind'))"
SENDING = "NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dropped'))"
# The standing in parentheses: migration 9 wrote it so (portable: PostgreSQL wants them, SQLite keeps them).
HEALTH, LAST_SEEN, NAME = f"({standing_sql()})", "COALESCE(last_seen, 0)", "lower(name)"

TABLES = (
    Table("delivered", (C("mid", "int", "PRIMARY KEY"), C("digest", "blob", NN), C("at", "real", NN))),
    Table("meta", (C("key", "text", "PRIMARY KEY"), C("value", "text", NN))),
    Table("counters", (C("name", "text", "PRIMARY KEY"), C("value", "bigint", NN))),
    Table("device_alerts", (
        C("device_id", "text", NN), C("subsystem", "text", NN), C("state", "text", ALERT_STATE),
        C("message", "text"), C("updated_at", "real", NN), C("ack_by", "text"), C("ack_at", "real"),
        C("ack_note", "text"),
    ), key=("device_id", "subsystem")),
    Table("events", (
        C("id", "serial"), C("ts", "real", NN), C("type", "text", NN), C("severity", "text", NN),
        C("source_id", "text", NN), C("payload", "text", NN),
    ), indexes=(
        Index("events_source", ("source_id", "id")), Index("events_ts", ("ts",)),
        Index("events_type", ("type", "id")), Index("events_severity", ("severity", "id")),
    )),
    Table("notify_groups", (C("rule", "text", "PRIMARY KEY"), C("opened_at", "real", NN), C("due_at", "real", NN))),
    Table("notify_items", (
        C("rule", "text", NN), C("device_id", "text", NN), C("subject", "text", NN), C("kind", "text", ITEM_KIND),
        C("category", "text", NN), C("event_id", "bigint", NN), C("line", "text", NN),
    ), key=("rule", "device_id", "subject")),
    Table("notify_told", (
        C("rule", "text", NN), C("device_id", "text", NN), C("subject", "text", NN), C("category", "text", NN),
        C("told_at", "real", NN), C("line", "text", NN), C("acked", "int", "NOT NULL DEFAULT 0"),
        C("escalate_at", "real"), C("escalated_at", "real"),
    ), key=("rule", "device_id", "subject")),
    Table("notifications", (
        C("id", "serial"), C("channel", "text", NN), C("status", "text", SENDING),
        C("attempts", "int", "NOT NULL DEFAULT 0"), C("created_at", "real", NN), C("next_attempt_at", "real", NN),
        C("sent_at", "real"), C("last_error", "text"), C("title", "text", NN), C("body", "text", NN),
        C("notify_type", "text", NN), C("event_ids", "text", NN),
    ), indexes=(Index("notifications_queue", ("channel", "status", "id")),)),
    Table("registry", (
        C("device_id", "text", "PRIMARY KEY"), C("name", "text"), C("site", "text"),
        C("tags", "text", "NOT NULL DEFAULT '[]'"), C("notes", "text"), C("heartbeat_timeout_s", "real"),
        C("updated_at", "real", NN),
    ), indexes=(Index("registry_site", ("site",)), Index("registry_name", (NAME, "device_id"), (NAME,)))),
    Table("ingest_commands", (
        C("id", "serial"), C("kind", "text", NN), C("device_id", "text", NN), C("at", "real", NN),
        C("args", "text", "NOT NULL DEFAULT '{}'"),
    )),
    Table("devices", (
        C("id", "text", "PRIMARY KEY"), C("first_seen", "real"), C("last_seen", "real"),
        C("liveness", "text", LIVENESS), C("playback_active", "int", "NOT NULL DEFAULT 0"), C("melody_uid", "text"),
        C("last_heartbeat", "text"), C("worst_rank", "int"), C("alert_count", "int", "NOT NULL DEFAULT 0"),
        C("firmware", "text"),
    ), indexes=(
        Index("devices_liveness", ("liveness", "last_seen")),
        Index("devices_health", (HEALTH, "id"), (HEALTH,)),
        Index("devices_last_seen", (LAST_SEEN, "id"), (LAST_SEEN,)),
        Index("devices_firmware", ("firmware", "id")),
    )),
    Table("device_tags", (C("tag", "text", NN), C("device_id", "text", NN)), key=("tag", "device_id"),
          indexes=(Index("device_tags_device", ("device_id",)),)),
    Table("tag_counts", (C("tag", "text", "PRIMARY KEY"), C("n", "int", NN))),
    Table("alert_flaps", (
        C("device_id", "text", NN), C("subsystem", "text", NN), C("changes", "text", NN),
        C("flapping", "int", "NOT NULL DEFAULT 0"),
    ), key=("device_id", "subsystem")),
    Table("silences", (
        C("id", "serial"), C("device_id", "text"), C("tag", "text"), C("subsystem", "text"),
        C("starts_at", "real", NN), C("ends_at", "real", NN), C("comment", "text"), C("created_by", "text", NN),
        C("created_at", "real", NN), C("site", "text"), C("device_ids", "text"),
        C("told", "int", "NOT NULL DEFAULT 0"), C("ended_by", "text"),
    ), indexes=(Index("silences_ends", ("ends_at",)),)),
    Table("episodes", (
        C("id", "serial"), C("kind", "text", EPISODE_KIND), C("device_id", "text", NN),
        C("subsystem", "text", "NOT NULL DEFAULT ''"), C("started", "real", NN), C("ended", "real"),
        C("worst", "text", NN), C("changes", "int", "NOT NULL DEFAULT 1"), C("ack_at", "real"), C("ack_by", "text"),
        C("silenced", "int", "NOT NULL DEFAULT 0"), C("span", "int", "NOT NULL DEFAULT -1"),
        C("first_event", "bigint"), C("last_event", "bigint"),
    ), indexes=(
        Index("episodes_device", ("device_id", "started")), Index("episodes_ended", ("ended",)),
        Index("episodes_span", ("kind", "span", "started", "ended", "device_id", "ack_at")),
        Index("episodes_incidents", ("device_id", "started", "ack_at", "ended"), where="kind = 'incident'",
              engine="sqlite"),  # its reports' walk (medians.py); PostgreSQL groups by hash
    )),
    Table("audit", (
        C("id", "serial"), C("at", "real", NN), C("actor", "text", NN), C("kind", "text", NN), C("role", "text"),
        C("address", "text"), C("method", "text", NN), C("action", "text", NN), C("target", "text"),
        C("status", "int", NN), C("detail", "text"),
    ), indexes=(Index("audit_at", ("at", "id")), Index("audit_actor", ("actor", "at")))),
)  # fmt: skip


def _column(dialect: Dialect, column: Column) -> str:
    return " ".join(filter(None, (column.name, dialect.types[column.type], column.rest)))


def create_table(dialect: Dialect, table: Table) -> list[str]:
    """One table's CREATE TABLE and CREATE INDEX statements in the dialect's DDL."""
    parts = [_column(dialect, c) for c in table.columns]
    if table.key:
        parts.append(f"PRIMARY KEY ({', '.join(table.key)})")
    statements = [f"CREATE TABLE {table.name} ({', '.join(parts)})"]
    return statements + [create_index(dialect, table.name, index) for index in indexes(dialect, table.name)]


def indexes(dialect: Dialect, table: str) -> list[Index]:
    """A table's indexes in this engine (those of every engine and its own)."""
    found = next(t for t in TABLES if t.name == table)
    return [index for index in found.indexes if index.engine in ("", dialect.name)]


def engine_only(engine: str) -> set[str]:
    """The names of the indexes only this engine has."""
    return {index.name for table in TABLES for index in table.indexes if index.engine == engine}


def create_index(dialect: Dialect, table: str, index: Index) -> str:
    """One index's CREATE INDEX in the dialect's DDL."""
    terms = [dialect.index_term(t) if t in index.expressions else t for t in index.terms]
    where = f" WHERE {index.where}" if index.where else ""
    return f"CREATE INDEX {index.name} ON {table} ({', '.join(terms)}){where}"


def create_all(dialect: Dialect) -> list[str]:
    """The whole schema in force, as the dialect's statements, q's index (the engine's own) last."""
    portable = [statement for table in TABLES for statement in create_table(dialect, table)]
    return portable + dialect.statements(search.DDL)
