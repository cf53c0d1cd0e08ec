"""The device list's `q` by index (§12): a substring of MIN_CHARS or more finds its candidates by trigram.

Each engine has its own index (migration 10, the one migration that is not portable SQL):
- SQLite: an FTS5 table with the trigram tokenizer, one row per device (its id, name, site and tags),
  kept by triggers on devices' INSERT and DELETE (never on a heartbeat's UPDATE) and on the registry's writes;
  device_search_keys gives each device the FTS row's integer key (devices' own rowid may change on VACUUM).
- PostgreSQL: pg_trgm's GIN indexes on devices.id and on the registry's name, site and tags: nothing to keep.
The index only narrows: listing.py keeps its exact LIKE over the candidates, so the rows are those a scan finds.
A shorter `q` (1 or 2 characters: no trigram in it) and a `q` with more than `cap` candidates keep the scan.
"""

from __future__ import annotations

from typing import Any

MIN_CHARS = 3
_TEXT = (
    "k.device_id || char(10) || COALESCE(r.name, '') || char(10) || COALESCE(r.site, '')"
    " || char(10) || COALESCE(r.tags, '')"
)
_ROW = f"SELECT k.n, {_TEXT} FROM device_search_keys k LEFT JOIN registry r ON r.device_id = k.device_id"


def _refresh(device_id: str) -> str:
    """A trigger's statements writing a device's FTS row afresh (none if the device has no devices row)."""
    return (
        f"DELETE FROM device_search WHERE rowid = (SELECT n FROM device_search_keys WHERE device_id = {device_id});"
        f" INSERT INTO device_search (rowid, text) {_ROW} WHERE k.device_id = {device_id};"
    )


SQLITE_DDL = f"""
CREATE TABLE device_search_keys (n INTEGER PRIMARY KEY, device_id TEXT NOT NULL UNIQUE);
CREATE VIRTUAL TABLE device_search USING fts5(text, tokenize = 'trigram');
INSERT INTO device_search_keys (device_id) SELECT id FROM devices;
INSERT INTO device_search (rowid, text) {_ROW};
CREATE TRIGGER device_search_insert AFTER INSERT ON devices BEGIN
 INSERT INTO device_search_keys (device_id) VALUES (new.id); {_refresh("new.id")} END;
CREATE TRIGGER device_search_delete AFTER DELETE ON devices BEGIN
 DELETE FROM device_search WHERE rowid = (SELECT n FROM device_search_keys WHERE device_id = old.id);
 DELETE FROM device_search_keys WHERE device_id = old.id; END;
CREATE TRIGGER registry_search_insert AFTER INSERT ON registry BEGIN {_refresh("new.device_id")} END;
CREATE TRIGGER registry_search_update AFTER UPDATE OF device_id, name, site, tags ON registry
 WHEN old.device_id IS NOT new.device_id OR old.name IS NOT new.name OR old.site IS NOT new.site
 OR old.tags IS NOT new.tags BEGIN
 {_refresh("old.device_id")} {_refresh("new.device_id")} END;
CREATE TRIGGER registry_search_delete AFTER DELETE ON registry BEGIN {_refresh("old.device_id")} END;
"""
POSTGRES_DDL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX devices_id_trgm ON devices USING gin (id gin_trgm_ops);
CREATE INDEX registry_trgm ON registry USING gin (name gin_trgm_ops, site gin_trgm_ops, tags gin_trgm_ops);
"""
DDL = {"sqlite": SQLITE_DDL, "postgresql": POSTGRES_DDL}  # migration 10, by engine (tables.py's too)
SQLITE_TABLES = "device_search"  # its tables' common prefix (FTS5's own shadow tables included): SQLite's alone
POSTGRES_INDEXES = frozenset({"devices_id_trgm", "registry_trgm"})  # PostgreSQL's alone
_CANDIDATES = {
    "sqlite": "SELECT k.device_id FROM device_search s JOIN device_search_keys k ON k.n = s.rowid"
    " WHERE device_search MATCH ? LIMIT ?",
    "postgresql": "SELECT id FROM devices WHERE id ILIKE ?1 UNION SELECT device_id FROM registry"
    " WHERE name ILIKE ?1 OR site ILIKE ?1 OR tags ILIKE ?1 LIMIT ?2",
}


def engine_only(table: str) -> bool:
    """Whether a SQLite table is the search index's (not in tables.py's portable description)."""
    return table.startswith(SQLITE_TABLES)


def candidates(conn: Any, q: str, like: str, cap: int) -> list[str] | None:
    """The ids of the devices whose id, name, site or tags may hold q (a superset); None if q is too short or
    there are more than `cap` (then a walk of the sort's index finds a page sooner than the candidates would).

    `like`: q as listing.py's LIKE pattern (PostgreSQL's ILIKE reads it); SQLite's FTS5 reads q as a phrase.
    """
    if len(q) < MIN_CHARS:
        return None
    engine = conn.dialect.name
    pattern = '"' + q.replace('"', '""') + '"' if engine == "sqlite" else like
    ids = [device_id for (device_id,) in conn.execute(_CANDIDATES[engine], (pattern, cap + 1)).fetchall()]
    return None if len(ids) > cap else ids
