"""Fixtures: a real Mosquitto on a free port, a config per test, real Vesper processes."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from shared import config as config_mod
from shared import store
from shared.store import postgres, sqlite_readers
from tests.support import FakeClock, Peer, Process, ingest_args, wait_for, web_args
from vesper_sim import broker as broker_mod
from vesper_web import create_app

pytest_plugins = ("tests.browser", "tests.receivers", "tests.pg")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers the fixtures here read."""
    config.addinivalue_line("markers", "web(**settings): [web] settings for the `app` fixture (WebConfig fields)")
    config.addinivalue_line("markers", "sqlite_only(why): a test of SQLite's files and locks: not run on PostgreSQL")


class Broker:
    """A running mosquitto that tests can stop and start again with the same persistence."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart) on the same port and persistence directory."""
        self.proc = broker_mod.start(self.directory, self.port)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (saves persistence) or SIGKILL."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free port (never the system one on 1883)."""
    b = Broker(tmp_path / "mosquitto", broker_mod.free_port())
    b.start()
    yield b
    b.stop()


def write_config(path: Path, port: int, db: Path, **overrides: dict[str, Any]) -> Path:
    """A TOML config for one test; `overrides` are whole sections of extra keys."""
    sections: dict[str, dict[str, Any]] = {
        "mqtt": {"port": port, "client_id": f"vesper-ingest-{port}"},
        "web": {"bind": f"127.0.0.1:{broker_mod.free_port()}"},
        "database": {k: v for k, v in vars(database(db, path.parent)).items() if v},
        "liveness": {"heartbeat_timeout_s": 90.0, "sweep_interval_s": 0.2},
        "ingest": {"summary_interval_s": 1.0},
    }
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            lines.append(f"{key} = {value!r}".replace("'", '"'))
    path.write_text("\n".join(lines) + "\n")
    config_mod.load(path)  # fail here, not in the child, if the test wrote a bad file
    return path


@pytest.fixture
def make_config(tmp_path: Path, broker: Broker, db_path: Path) -> Callable[..., Path]:
    """Write this test's config file (on the test's database); keyword sections override the defaults."""

    def make(**overrides: dict[str, Any]) -> Path:
        return write_config(tmp_path / "vesper.toml", broker.port, db_path, **overrides)

    return make


@pytest.fixture(autouse=True)
def _idle_readers_closed() -> Iterator[None]:
    """The web's pooled SQLite readers opened in this process are closed after each test (its files go)."""
    yield
    sqlite_readers.close_all()


@pytest.fixture
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The database the test's processes use: a SQLite file, or with VESPER_TEST_DATABASE=postgresql a fresh
    PostgreSQL database's URL (tests/pg.py) that every store function takes as it takes a path."""
    if os.environ.get("VESPER_TEST_DATABASE") == "postgresql":
        request.addfinalizer(postgres.close_pools)  # db_path goes before pg_url: the pools close, then the drop
        return request.getfixturevalue("pg_url")
    return tmp_path / "vesper.db"


@pytest.fixture(scope="module")
def module_db_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As db_path, one for a whole module: data built once for tests that only read it (that module's fixtures)."""
    if os.environ.get("VESPER_TEST_DATABASE") == "postgresql":
        server = request.getfixturevalue("pg_server")
        name = server.fresh_database()
        request.addfinalizer(lambda: server.drop_database(name))
        request.addfinalizer(postgres.close_pools)  # added last, run first: the pools close, then the drop
        return server.url(name)
    return tmp_path_factory.mktemp("module-db") / "vesper.db"


@pytest.fixture
def app(request: pytest.FixtureRequest, db_path: Path, tmp_path: Path) -> Flask:
    """The web app from create_app over the test's database (db_path); `@pytest.mark.web(...)` sets [web] keys."""
    marker = request.node.get_closest_marker("web")
    web = config_mod.WebConfig(**marker.kwargs) if marker else config_mod.WebConfig()
    return create_app(config_mod.Config(database=database(db_path, tmp_path), web=web))


def database(db: Path | str, directory: Path) -> config_mod.DatabaseConfig:
    """The [database] of a test: its file, or its PostgreSQL URL with the file's place kept in the test's directory
    (the session key and the ingest's lock live beside it)."""
    if str(db).startswith("postgresql://"):
        return config_mod.DatabaseConfig(path=str(directory / "vesper.db"), url=str(db))
    return config_mod.DatabaseConfig(path=str(db))


@pytest.fixture
def start_ingest(tmp_path: Path) -> Iterator[Callable[[Path], Process]]:
    """Start the real ingest process; every one started is stopped at teardown."""
    started: list[Process] = []

    def start(config: Path, wait_connected: bool = True) -> Process:
        proc = Process(ingest_args(), config, tmp_path / f"ingest-{len(started)}.log")
        started.append(proc)
        if wait_connected:
            proc.wait_output("connected to")
        return proc

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def start_web(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start the real web process (gunicorn, gevent worker) and wait until /healthz answers."""
    started: list[Process] = []

    def start(config: Path, wait_ready: bool = True) -> Process:
        proc = Process(web_args(), config, tmp_path / f"web-{len(started)}.log")
        started.append(proc)
        if wait_ready:
            url = f"http://{config_mod.load(config).web.bind}/healthz"
            wait_for(lambda: _answers(url) or proc.proc.poll() is not None, 30, f"{url} to answer")
            assert proc.proc.poll() is None, proc.output()
        return proc

    yield start
    for proc in started:
        proc.kill()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.fixture
def peer(broker: Broker) -> Iterator[Peer]:
    """A device-side MQTT client that also listens to the published events."""
    p = Peer(broker.port, subscribe=["vesper/console/published"])
    yield p
    p.close()


class KeptReader(postgres.PgConnection):
    """The test's one PostgreSQL reader: close() keeps it open (a connection per poll would exhaust the server's)."""

    def close(self) -> None:
        """Keep the connection for the rest of the test."""


@pytest.fixture
def read_db(db_path: Path) -> Iterator[Callable[[], Any]]:
    """Open the test database read-only, as the web does; each connection opened is closed at teardown.

    On PostgreSQL every call gives the same autocommit connection: each statement sees what is committed.
    """
    opened: list[Any] = []

    def open_() -> Any:
        if opened and isinstance(opened[0], KeptReader):
            return opened[0]
        conn = store.connect(db_path, readonly=True)
        opened.append(KeptReader(conn.raw) if isinstance(conn, postgres.PgConnection) else conn)
        return opened[-1]

    yield open_
    for conn in opened:
        conn.raw.close() if isinstance(conn, KeptReader) else conn.close()


@pytest.fixture
def clock() -> FakeClock:
    """The clock every in-process Ingest of the test reads."""
    return FakeClock()
