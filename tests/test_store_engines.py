"""The store on both engines (§10): one description gives both schemas, each dialect speaks the store's SQL."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from shared import store
from shared.config import Config
from shared.store import dialect, postgres, search, tables
from shared.store.sqlite import SQLITE
from tests.conftest import database
from vesper_web import create_app


def test_postgres_creates_the_schema_sqlite_migrates_to(tmp_path: Path, pg_url: str) -> None:
    """Same tables, same columns in the same order, same nullability and indexes (PostgreSQL's version in a table)."""
    sqlite = store.open_store(tmp_path / "v.db")
    pg = store.open_store(pg_url)
    try:
        want = sqlite.dialect.columns(sqlite)
        got = pg.dialect.columns(pg)
        assert got.pop("schema_version") == ["version"]
        assert got == want
        assert _nullable_pg(pg) == _nullable_sqlite(sqlite)
        # q's index is each engine's own (search.py): SQLite's FTS5 tables are not in columns(), PostgreSQL's GIN here.
        assert _indexes_pg(pg) >= search.POSTGRES_INDEXES
        sqlite_indexes = {name for name, _ in _indexes_sqlite(sqlite)}
        assert _indexes_pg(pg) - search.POSTGRES_INDEXES == sqlite_indexes - tables.engine_only("sqlite")
        assert dialect.schema_version(pg) == len(store.MIGRATIONS)
        assert store.migrate(pg) == len(store.MIGRATIONS)  # idempotent
    finally:
        sqlite.close()
        pg.close()


def test_postgres_migrates_a_database_of_an_older_schema(pg_url: str) -> None:
    """A PostgreSQL database at migration 7 (as issue 28 left them) gets migrations 8 to 14, to the schema in force."""
    pg = store.open_store(pg_url)
    try:
        fresh = pg.dialect.columns(pg), _indexes_pg(pg)
        with dialect.write(pg):
            dropped = ("devices_firmware", "events_type", "events_severity", "registry_name", *search.POSTGRES_INDEXES)
            for index in dropped:
                pg.execute(f"DROP INDEX {index}")
            pg.execute("DROP EXTENSION pg_trgm")
            pg.execute("DROP TABLE episodes")
            pg.execute("DROP TABLE audit")
            for column in ("escalate_at", "escalated_at"):
                pg.execute(f"ALTER TABLE notify_told DROP COLUMN {column}")
            pg.execute("ALTER TABLE devices DROP COLUMN firmware")
            for column in ("site", "device_ids", "told", "ended_by"):
                pg.execute(f"ALTER TABLE silences DROP COLUMN {column}")
            pg.dialect.set_schema_version(pg, 7)
        assert store.migrate(pg) == len(store.MIGRATIONS)
        assert (pg.dialect.columns(pg), _indexes_pg(pg)) == fresh
        assert dialect.schema_version(pg) == len(store.MIGRATIONS)
    finally:
        pg.close()


def test_sqlite_migrations_build_the_described_schema(tmp_path: Path) -> None:
    """What SQLite's migrations build is what tables.py describes: columns, types, defaults, keys, checks, indexes."""
    migrated = store.open_store(tmp_path / "migrated.db")
    described = store.connect(tmp_path / "described.db")
    try:
        for statement in tables.create_all(SQLITE):
            described.execute(statement)
        assert len(store.MIGRATIONS) == tables.AT
        assert _sqlite_shape(described) == _sqlite_shape(migrated)
    finally:
        migrated.close()
        described.close()


def test_the_description_names_every_column_once() -> None:
    """Each table's columns, key and index columns are its own (a typo would otherwise surface in production)."""
    for table in tables.TABLES:
        names = [c.name for c in table.columns]
        assert len(set(names)) == len(names), table.name
        assert set(table.key) <= set(names), table.name
        for index in table.indexes:
            assert set(index.terms) - set(index.expressions) <= set(names), index.name


def _sqlite_shape(conn: store.Connection) -> dict[str, object]:
    """Each table's PRAGMA table_info and CHECK constraints, every index's definition, q's index and the triggers."""
    master = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    shape: dict[str, object] = {
        "indexes": _indexes_sqlite(conn),
        "triggers": {name: _squeezed(sql) for name, sql in triggers},
        "search": {name: _squeezed(sql) for name, sql in master.items() if search.engine_only(name)},
    }
    for table in conn.dialect.columns(conn):
        shape[table] = (
            conn.execute(f"PRAGMA table_info({table})").fetchall(),
            sorted(_squeezed(c) for c in re.findall(r"CHECK \([^()]*\([^()]*\)\)", master[table])),
        )
    return shape


def _squeezed(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def _indexes_sqlite(conn: store.Connection) -> set[tuple[str, str]]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    return {(name, _squeezed(sql)) for name, sql in rows}


def _indexes_pg(conn: store.Connection) -> set[str]:
    sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey'"
    return {name for (name,) in conn.execute(sql).fetchall()}


def _nullable_sqlite(conn: store.Connection) -> set[tuple[str, str]]:
    """Columns that may be NULL (a key's columns left out: SQLite lets an old text key be NULL, PostgreSQL not)."""
    return {
        (table, row[1])
        for table in conn.dialect.columns(conn)
        for row in conn.execute(f"PRAGMA table_info({table})").fetchall()
        if not row[3] and not row[5]
    }


def _nullable_pg(conn: store.Connection) -> set[tuple[str, str]]:
    sql = (
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_nullable = 'YES'"
    )
    return set(conn.execute(sql).fetchall())


def test_event_ids_on_postgres_survive_pruning(pg_url: str) -> None:
    """Pruning reuses no id, and last_event_id still knows the highest (as SQLite's sqlite_sequence does)."""
    conn = store.open_store(pg_url)
    try:
        assert store.last_event_id(conn) == 0
        with store.write(conn):
            ids = [store.insert_event(conn, ts, "info", "info", "d", "{}") for ts in (1.0, 2.0, 3.0)]
            assert ids == [1, 2, 3]
            assert store.prune_events(conn, 10.0) == 3
        assert store.last_event_id(conn) == 3
        with store.write(conn):
            assert store.insert_event(conn, 11.0, "info", "info", "d", "{}") == 4
    finally:
        conn.close()


def test_last_event_id_is_the_last_committed_one_on_postgres(pg_url: str) -> None:
    """A batch being written is not yet in a reader's last_event_id (a stream starting from it would skip it)."""
    writer, reader = store.open_store(pg_url), store.connect(pg_url, readonly=True)
    try:
        with store.write(writer):
            store.insert_event(writer, 1.0, "info", "info", "d", "{}")
        with store.write(writer):
            assert store.insert_event(writer, 2.0, "info", "info", "d", "{}") == 2
            assert store.last_event_id(writer) == 2 and store.last_event_id(reader) == 1
        assert store.last_event_id(reader) == 2
    finally:
        writer.close()
        reader.close()


def test_placeholders_become_psycopgs() -> None:
    """? counts, ?N names (reused as often as written), % is escaped."""
    assert postgres.translate("SELECT ? , ?") == ("SELECT %s , %s", False)
    assert postgres.translate("UPDATE t SET a = ?1 WHERE id = ?1 AND b LIKE '%x'") == (
        "UPDATE t SET a = %(p1)s WHERE id = %(p1)s AND b LIKE '%%x'",
        True,
    )


def test_a_failed_write_rolls_back_on_postgres(pg_url: str) -> None:
    """The dialect's write() is one transaction there too."""
    conn = store.open_store(pg_url)
    try:
        try:
            with store.write(conn):
                store.mark_alive(conn, "d", 1.0)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert store.device(conn, "d") is None
    finally:
        conn.close()


def test_pooled_readers_are_reused_and_read_only(pg_url: str) -> None:
    """The web's per-request readers come from the pool and go back to it (20 requests, not 20 connections)."""
    store.open_store(pg_url).close()
    for _ in range(20):
        reader = store.connect(pg_url, readonly=True, pooled=True)
        assert store.devices(reader) == []
        reader.close()
    stats = postgres._pools[pg_url].get_stats()
    assert stats["requests_num"] == 20 and stats["connections_num"] <= 2, stats
    reader = store.connect(pg_url, readonly=True, pooled=True)
    try:
        try:
            with store.write(reader):
                store.mark_alive(reader, "d", 1.0)
            raise AssertionError("a pooled reader wrote")
        except psycopg.errors.ReadOnlySqlTransaction:
            pass
    finally:
        reader.close()
    postgres.close_pools()  # the test's database is dropped after it


NAMES = {"d1": "Zoë", "d2": "élise", "d3": "Élise", "d4": "emma", "d5": "Zed", "d6": "äb", "d7": "ab", "d8": "_x"}


def _listed(target: str | Path, query: str) -> list[str]:
    """Device ids as GET /api/devices answers the query, through the app on that database."""
    app = create_app(Config(database=database(target, Path("/nonexistent"))))
    return [d["id"] for d in app.test_client().get(f"/api/devices?{query}").get_json()]


def test_names_sort_and_match_as_on_sqlite_whatever_the_servers_locale(tmp_path: Path, pg_server, request) -> None:
    """A database made with a linguistic collation (ICU en-US) still orders, folds and matches names as SQLite."""
    name = "icu_en_us"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
    request.addfinalizer(lambda: pg_server.drop_database(name))
    request.addfinalizer(postgres.close_pools)
    targets: list[str | Path] = [tmp_path / "v.db", pg_server.url(name)]
    for target in targets:
        conn = store.open_store(target)
        with store.write(conn):
            for device_id, text in NAMES.items():
                store.put_entry(conn, device_id, {"name": text, "site": None, "tags": [], "notes": None,
                                                  "heartbeat_timeout_s": None}, 1.0)  # fmt: skip
        conn.close()
    for query in ("sort=name", "sort=name&limit=3", "q=lise", "q=%C3%A9", "q=E", "sort=id"):
        sqlite, pg = (_listed(target, query) for target in targets)
        assert pg == sqlite, query
