"""`python -m shared.copydb` as an operator runs it: a lived-in SQLite database into an empty PostgreSQL one.

The SQLite side is filled the way production fills it: an in-process ingest on a fake clock (heartbeats,
alert transitions, a flapping subsystem, devices gone offline, pruning, notifications) and the web's
API (registry entries, an acknowledgement, silences, a forgotten device). After the copy, a second web
app on PostgreSQL must answer every GET as the SQLite one does, and both go on giving the same ids.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import copydb, store
from shared.store import dialect, postgres, search
from tests.conftest import database, write_config
from tests.support import ROOT, FakeClock
from tests.test_ingest_inprocess import heartbeat, message
from tests.test_lifecycle_api import ack, alert, post_silence
from tests.test_registry_api import patch
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod
from vesper_web import create_app

TIMEOUT = 10.0
DAY = 86_400.0
DEVICES = [f"bell-{n:02d}" for n in range(30)]
NOTIFY = (
    '[notify]\n[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/x"\n'  # never sent to: run() is not called
    '[[notify.rules]]\nchannel = "ops"\ngroup_wait_s = 5.0\n'
)
SITES = ["St Mary's", "Cathedral", "Town hall"]
NAMES = ["north tower", "South Tower", "Élise", "apse", "Bell · Ost 😀", "belfry", "Zwölf"]
IDENTITY_TABLES = ("events", "notifications", "ingest_commands", "silences")


def make_config(tmp_path: Path, db: Path | str, name: str) -> config_mod.Config:
    """An ingest's config on `db` (a file or a URL): a 10 s heartbeat timeout and one notification rule."""
    port = broker_mod.free_port()
    path = write_config(tmp_path / name, port, db, liveness={"heartbeat_timeout_s": TIMEOUT})  # type: ignore[arg-type]
    path.write_text(path.read_text() + NOTIFY)
    return config_mod.load(path)


@contextmanager
def running(cfg: config_mod.Config, clock: FakeClock) -> Iterator[Ingest]:
    """An in-process Ingest, connected at the clock's now, closed afterwards."""
    ingest = Ingest(cfg, clock=clock)
    ingest.connected()
    try:
        yield ingest
    finally:
        ingest.writer.close()


def web(db: Path | str, tmp_path: Path) -> Flask:
    """The web app on a SQLite file or a PostgreSQL URL."""
    return create_app(config_mod.Config(database=database(db, tmp_path), web=config_mod.WebConfig()))


def copy(sqlite_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Run the command as an operator would, from the repository's root."""
    args = [sys.executable, "-m", "shared.copydb", str(sqlite_path), url]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def fill(client: FlaskClient, ingest: Ingest, clock: FakeClock) -> None:
    """A week and a day of a fleet's life on SQLite, through the ingest and the API."""
    mids = iter(range(1, 10**6))
    # A week ago: every device reports, a few open doors; then a week of silence (all offline), then back.
    ingest.process([heartbeat(ingest, d) for d in DEVICES])
    ingest.process([message(ingest, d, "info", b'{"type": "door_opened"}', mid=next(mids)) for d in DEVICES[:6]])
    ingest.sweep(clock.advance(TIMEOUT + 1))
    clock.advance(8 * DAY)
    ingest.process([message(ingest, d, "heartbeat", json.dumps({"uptime": n, "rssi": -60.25 - n}).encode())
                    for n, d in enumerate(DEVICES)])  # fmt: skip
    ingest.prune(clock())  # the week-old events go; their ids are never given again
    # Alerts: active ones of every state, some cleared, one subsystem flapping.
    for n, device in enumerate(DEVICES[:15]):
        alert(ingest, ("WARNING", "CRITICAL", "FAILED")[n % 3], device, ("Audio", "Net", "Motor")[n % 3], f"fault {n}")
    for device in DEVICES[:4]:
        clock.advance(1)
        alert(ingest, "CLEARED", device, ("Audio", "Net", "Motor")[DEVICES.index(device) % 3])
    for _ in range(4):
        alert(ingest, "CRITICAL", DEVICES[20], "Clock", "drift")
        alert(ingest, "CLEARED", DEVICES[20], "Clock")
    alert(ingest, "CRITICAL", DEVICES[20], "Clock", "drift")
    playing = b'{"type": "playback_started", "payload": {"melody_uid": "m-42"}}'
    ingest.process([message(ingest, DEVICES[7], "info", playing, mid=next(mids))])
    # The registry: names, sites, tags, notes, one long own timeout, and a device that never reported.
    for n, device in enumerate(DEVICES[:21]):
        entry: dict[str, Any] = {"name": f"{NAMES[n % len(NAMES)]} {n}", "site": SITES[n % 3],
                                 "tags": ["north", "tower"] if n % 2 else ["south"]}  # fmt: skip
        if n % 5 == 0:
            entry["notes"] = f"key at the office, drawer {n}"
        patch(client, device, entry)
    patch(client, DEVICES[27], {"heartbeat_timeout_s": 3600, "tags": ["spare"]})
    patch(client, "bell-99", {"name": "not installed yet", "site": "Cathedral", "tags": ["spare"]})
    # Three devices fall silent past their timeout (one has an hour: it stays online); the sweep decides.
    clock.advance(TIMEOUT + 1)
    ingest.process([heartbeat(ingest, d) for d in DEVICES[:27]])
    ingest.sweep(clock())
    # The lifecycle: an acknowledgement (carried out by the sweep), silences by device and by tag.
    ack(client, ingest, f"/api/devices/{DEVICES[5]}/alerts/Motor/ack", {"note": "on my way"})
    post_silence(client, {"device": DEVICES[6], "duration_s": 3600, "comment": "maintenance"})
    post_silence(client, {"tag": "south", "subsystem": "Audio", "duration_s": 7200})
    # A forgotten device (its command carried out in the next sweep: ingest_commands ends empty).
    assert client.delete(f"/api/devices/{DEVICES[14]}").status_code in (200, 202, 204)
    ingest.sweep(clock.advance(1))
    clock.advance(5)  # the notification rule's window ends: one message queued
    ingest.outbox.flush()
    alert(ingest, "CRITICAL", DEVICES[22], "Audio", "a new group, still open")


def drop_newest_events(path: Path, n: int) -> None:
    """Delete the newest events, so that the highest id ever given (sqlite_sequence) is above MAX(id)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id DESC LIMIT ?)", (n,))


def counts(conn: store.Connection, tables: list[str]) -> dict[str, int]:
    """Rows per table."""
    return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}


URLS = [
    "/api/devices",
    "/api/devices?sort=name",
    "/api/devices?sort=severity",
    "/api/devices?sort=-last_seen",
    "/api/devices?health=critical,warning",
    "/api/devices?health=offline",
    "/api/devices?tag=north",
    "/api/devices?tag=north&tag=tower&site=St%20Mary%27s",
    "/api/devices?q=tower",
    "/api/devices?q=TOWER",
    "/api/devices?q=spare",
    "/api/devices?sort=name&limit=7",
    "/api/devices?sort=-last_seen&limit=5",
    *[f"/api/devices/{d}" for d in (*DEVICES, "bell-99")],
    *[f"/api/devices/{d}/alerts" for d in DEVICES[:21]],
    "/api/summary",
    "/api/events",
    "/api/events?after=0&limit=1000",
    "/api/events?after=40&limit=10",
    f"/api/events?device={DEVICES[20]}",
    "/api/silences",
    "/api/notifications",
    "/api/devices?format=csv",
    "/api/devices?format=csv&sort=name&tag=spare",
]


def answer(client: FlaskClient, url: str) -> tuple[int, Any, dict[str, str]]:
    """A GET's status, body (JSON, or text) and the paging headers."""
    response = client.get(url)
    body = response.get_json() if response.is_json else response.get_data(as_text=True)
    paging = {k: response.headers[k] for k in ("X-Total-Count", "Link") if k in response.headers}
    return response.status_code, body, paging


def test_copy_into_postgres_answers_as_sqlite(tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest) -> None:
    """Every API answer the same after the copy; ids, sequences and the next writes continue alike."""
    request.addfinalizer(postgres.close_pools)  # before pg_url: the pools close, then the database is dropped
    pg_url: str = request.getfixturevalue("pg_url")
    sqlite_path = tmp_path / "sqlite" / "vesper.db"
    sqlite_cfg = make_config(tmp_path, sqlite_path, "sqlite.toml")
    with running(sqlite_cfg, clock) as ingest:
        sqlite_app = web(sqlite_path, tmp_path)
        fill(sqlite_app.test_client(), ingest, clock)
    drop_newest_events(sqlite_path, 2)
    with closing(store.connect(sqlite_path, readonly=True)) as lite:
        tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' ORDER BY name")
                  if not search.engine_only(r[0])]  # q's index: each engine builds its own  # fmt: skip
        rows_before = counts(lite, tables)
        sequences = dict(lite.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
        low_event, top_event = lite.execute("SELECT MIN(id), MAX(id) FROM events").fetchone()
        last_sqlite = store.last_event_id(lite)
    # What the database holds: every table filled but the ingest's commands, events pruned at both ends.
    assert {t for t, n in rows_before.items() if n == 0} == {"ingest_commands"}, rows_before
    assert sequences["ingest_commands"] >= 1 and last_sqlite == top_event + 2 and low_event > 1

    done = copy(sqlite_path, pg_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:-1] == [f"{t}: {copydb.rows(rows_before[t])}" for t in tables]
    assert lines[-1].startswith(f"total: {copydb.rows(sum(rows_before.values()))} in {len(tables)} tables, ")
    assert lines[-1].endswith(f"; new events get ids from {last_sqlite + 1:,}")

    with closing(store.connect(pg_url)) as pg:
        assert counts(pg, tables) == rows_before
        assert store.last_event_id(pg) == last_sqlite
        assert pg.execute("SELECT pg_get_serial_sequence('events', 'id')").fetchone()[0] == "public.events_id_seq"
        digests = pg.execute("SELECT digest FROM delivered ORDER BY mid").fetchall()
    with closing(sqlite3.connect(sqlite_path)) as raw:
        assert digests == raw.execute("SELECT digest FROM delivered ORDER BY mid").fetchall()

    pg_app = web(pg_url, tmp_path)
    lite_client, pg_client = sqlite_app.test_client(), pg_app.test_client()
    for url in URLS:
        want = answer(lite_client, url)
        assert want[0] == (404 if f"/{DEVICES[14]}" in url else 200), (url, want)  # bell-14 was forgotten
        assert answer(pg_client, url) == want, url
    link = answer(lite_client, "/api/devices?sort=name&limit=7")[2]["Link"]
    following = link.split(">")[0].lstrip("<")  # the next page's URL, its cursor holding a name and an id
    assert answer(pg_client, following) == answer(lite_client, following)

    # Both go on alike: the same writes get the same ids on either engine.
    cfg_pg = make_config(tmp_path, pg_url, "pg.toml")
    for cfg in (sqlite_cfg, cfg_pg):
        with running(cfg, clock) as ingest:
            ingest.process([heartbeat(ingest, DEVICES[29])])  # back online
            alert(ingest, "FAILED", DEVICES[29], "Audio", "after the move")
            ingest.sweep(clock())
    new_events = answer(lite_client, f"/api/events?after={last_sqlite}")
    assert [e["id"] for e in new_events[1]["events"]] == [last_sqlite + 1, last_sqlite + 2]
    for url in URLS:
        assert answer(pg_client, url) == answer(lite_client, url), url
    for app in (sqlite_app, pg_app):
        silence = post_silence(app.test_client(), {"device": DEVICES[1], "duration_s": 60})
        assert silence["id"] == sequences["silences"] + 1
    with closing(store.connect(pg_url)) as pg:
        with store.write(pg):
            command = store.queue_command(pg, "ack", DEVICES[0], {}, clock())
        assert command == sequences["ingest_commands"] + 1
        for table in IDENTITY_TABLES:  # every sequence at or past what SQLite last gave
            value, called = pg.execute(f"SELECT last_value, is_called FROM {table}_id_seq").fetchone()
            assert (value if called else 0) >= sequences.get(table, 0), table

    # A second copy into the now non-empty database is refused, and changes nothing.
    with closing(store.connect(pg_url)) as pg:
        before = counts(pg, tables)
    again = copy(sqlite_path, pg_url)
    assert again.returncode == 2 and again.stdout == ""
    assert "refused" in again.stderr and "already holds rows in" in again.stderr and "events" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    with closing(store.connect(pg_url)) as pg:
        assert counts(pg, tables) == before


def test_a_missing_file_is_refused_and_not_created(tmp_path: Path, pg_url: str) -> None:
    """exit 2 and why; no empty SQLite file (nor its directory) appears, PostgreSQL is not touched."""
    missing = tmp_path / "nowhere" / "vesper.db"
    done = copy(missing, pg_url)
    assert done.returncode == 2 and f"no SQLite database at {missing}" in done.stderr
    assert not missing.parent.exists()
    with closing(store.connect(pg_url)) as pg:
        assert dialect.schema_version(pg) == 0


def test_a_file_without_the_schema_is_refused_and_left_alone(tmp_path: Path, pg_url: str) -> None:
    """Schema version 0 (an empty file, another program's database) is no Vesper database: exit 2, unchanged."""
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn, conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = other.read_bytes()
    done = copy(other, pg_url)
    assert done.returncode == 2 and "holds no Vesper schema" in done.stderr
    assert other.read_bytes() == before


def test_an_old_schema_is_migrated_then_copied(tmp_path: Path, pg_url: str) -> None:
    """A database of schema version 4 (before the fleet-scale columns) is brought up to date, then copied."""
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as old:
        for script in store.MIGRATIONS[:4]:
            old.executescript(script)
        old.execute("PRAGMA user_version = 4")
        old.execute("INSERT INTO devices (id, first_seen, last_seen, liveness) VALUES ('bell-1', 1.0, 2.5, 'online')")
        old.execute("INSERT INTO registry (device_id, name, tags, updated_at) VALUES ('bell-2', 'x', '[\"a\"]', 3)")
        old.execute(
            "INSERT INTO events (ts, type, severity, source_id, payload) VALUES (2.5, 'info', 'i', 'bell-1', '{}')"
        )
    done = copy(path, pg_url)
    assert done.returncode == 0, done.stderr
    assert "devices: 2 rows" in done.stdout and "device_tags: 1 row\n" in done.stdout
    with closing(store.connect(pg_url)) as pg:
        assert store.last_event_id(pg) == 1
        assert pg.execute("SELECT id, first_seen, worst_rank FROM devices ORDER BY id").fetchall() == [
            ("bell-1", 1.0, None), ("bell-2", None, None)]  # fmt: skip


def test_a_nul_of_old_is_copied_as_the_replacement_character(tmp_path: Path, pg_url: str, clock: FakeClock) -> None:
    """U+0000 in an alert's message (stored so by an ingest before classify.py replaced it) becomes U+FFFD."""
    path = tmp_path / "vesper.db"
    with running(make_config(tmp_path, path, "sqlite.toml"), clock) as ingest:
        ingest.process([heartbeat(ingest, d) for d in DEVICES[:3]])
        alert(ingest, "CRITICAL", DEVICES[2], "Audio", "replaced")
    with closing(sqlite3.connect(path)) as old, old:
        old.execute("UPDATE device_alerts SET message = ?", ("nul \u0000 inside",))
    done = copy(path, pg_url)
    assert done.returncode == 0, done.stderr
    with closing(store.connect(pg_url)) as pg:
        assert pg.execute("SELECT message FROM device_alerts").fetchall() == [("nul \ufffd inside",)]


def test_a_failed_copy_leaves_the_target_empty(tmp_path: Path, pg_url: str, clock: FakeClock) -> None:
    """A value PostgreSQL refuses fails the whole copy: exit 1, one line naming the table, no row left behind.

    Text in an INTEGER column: SQLite's type affinity keeps it, PostgreSQL refuses it.
    """
    path = tmp_path / "vesper.db"
    with running(make_config(tmp_path, path, "sqlite.toml"), clock) as ingest:
        ingest.process([heartbeat(ingest, d) for d in DEVICES[:3]])
    with closing(sqlite3.connect(path)) as old, old:
        old.execute("UPDATE devices SET playback_active = 'yes'")
    done = copy(path, pg_url)
    assert done.returncode == 1 and "devices:" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("copydb: failed, nothing copied: ")
    assert done.stderr.strip().endswith("while copying devices")
    with closing(store.connect(pg_url)) as pg:
        tables = [r[0] for r in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert {t: n for t, n in counts(pg, tables).items() if n} == {"schema_version": 1}
        assert store.last_event_id(pg) == 0


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["only-one"],
        ["a.db", "b.db"],
        ["a.db", "mysql://x/y"],
        ["postgresql://x/y", "postgresql://x/z"],
        ["a.db", "postgresql://x/y", "extra"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A wrong number of arguments or a target that is no PostgreSQL URL: the usage line on stderr, exit 2."""
    assert copydb.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: python -m shared.copydb SQLITE_PATH POSTGRES_URL")
    assert not Path("a.db").exists()


def test_an_unreachable_server_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A database error (here: nothing listens on the port) is one line, not a traceback."""
    path = tmp_path / "vesper.db"
    store.open_store(path).close()
    url = f"postgresql://vesper@127.0.0.1:{broker_mod.free_port()}/nothing?connect_timeout=5"
    assert copydb.main([str(path), url]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("copydb: failed, nothing copied: OperationalError: ")
    assert len(err.strip().splitlines()) == 1


def test_a_web_started_first_on_postgres_does_not_block_the_copy(tmp_path: Path, pg_url: str, clock: FakeClock) -> None:
    """The session key a web process keeps in meta (vesper_web/sessions.py) is not data: the copy goes ahead."""
    path = tmp_path / "vesper.db"
    with running(make_config(tmp_path, path, "sqlite.toml"), clock) as ingest:
        ingest.process([heartbeat(ingest, d) for d in DEVICES[:3]])
    with closing(store.open_store(pg_url)) as pg:
        key = store.kept_secret(pg, "k" * 64)
    done = copy(path, pg_url)
    assert done.returncode == 0, done.stderr
    with closing(store.connect(pg_url)) as pg:
        assert store.kept_secret(pg, "another") == key and len(store.devices(pg)) == 3
