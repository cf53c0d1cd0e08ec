"""A real PostgreSQL (15+) for the tests: one server per session on a free port, a fresh database per test.

The server itself is harness/pg.py's (the benches start it too); here a server that cannot be had is a test
failure saying why, never a skip, and the fixtures `pg_server` and `pg_url`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness import pg
from harness.pg import MIN_VERSION as MIN_VERSION  # re-exported, as FakeClock in tests/support.py
from harness.pg import SETTINGS as SETTINGS
from harness.pg import SUPERUSER as SUPERUSER
from harness.pg import PostgresError


@contextmanager
def _fails() -> Iterator[None]:
    """A server that cannot be had fails the test with the reason alone (`make test` installs PostgreSQL)."""
    try:
        yield
    except PostgresError as exc:
        pytest.fail(str(exc), pytrace=False)


def find_bindir() -> Path:
    """The directory of initdb/pg_ctl/postgres (harness/pg.py); none of version 15+ fails the test."""
    with _fails():
        return pg.find_bindir()


class Postgres(pg.Postgres):
    """harness/pg.py's server, whose initdb or start failing fails the test; `fresh_database` for each test."""

    _maker: ThreadPoolExecutor | None = None
    _spare: Future[str] | None = None

    def init(self) -> None:
        """initdb, as harness/pg.py's."""
        with _fails():
            super().init()

    def start(self, attempts: int = 3) -> None:
        """Start on a free port, as harness/pg.py's."""
        with _fails():
            super().start(attempts)

    def fresh_database(self) -> str:
        """A new empty database, made while the test before ran: the next one is begun in the background now."""
        if self._maker is None:
            self._maker = ThreadPoolExecutor(1, thread_name_prefix="pg-spare")
        name = self._spare.result() if self._spare is not None else self.create_database()
        self._spare = self._maker.submit(self.create_database)
        return name

    def stop(self) -> None:
        """Wait for the spare database being made (it is never used), then stop as harness/pg.py's."""
        if self._maker is not None:
            self._maker.shutdown(wait=True)
        super().stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One PostgreSQL server for the whole session, started on first use."""
    server = Postgres(find_bindir(), tmp_path_factory.mktemp("postgres"))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: Postgres) -> Iterator[str]:
    """The URL of a fresh, empty database of its own for this test (dropped afterwards)."""
    name = pg_server.fresh_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)
