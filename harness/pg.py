"""A throwaway PostgreSQL (15+) server of our own on a free port, for the tests (tests/pg.py) and the benches.

A server that cannot be had raises PostgresError saying why: tests/pg.py makes it a test failure, bench a message.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg

from vesper_sim.broker import free_port

MIN_VERSION = 15
SUPERUSER = "vesper"
# Durability off: a test server's data is thrown away, and fsync is most of CREATE DATABASE's cost.
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
MISSING = "PostgreSQL {need}+ not found ({why}); `make test` installs it (Debian's postgresql package)"


class PostgresError(RuntimeError):
    """No server to be had: PostgreSQL is missing or too old, or initdb or the start failed (the message says)."""


def find_bindir() -> Path:
    """The directory of initdb/pg_ctl/postgres: on PATH, or Debian's /usr/lib/postgresql/N/bin (newest)."""
    on_path = shutil.which("initdb")
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = on_path or (debian[-1] if debian else None)
    if initdb is None:
        raise PostgresError(MISSING.format(need=MIN_VERSION, why="no initdb on PATH or in /usr/lib/postgresql"))
    bindir = Path(initdb).resolve().parent  # /usr/local/bin/initdb may be a symlink into Debian's bindir
    out = subprocess.run([bindir / "initdb", "--version"], capture_output=True, text=True, check=True).stdout
    version = re.search(r"(\d+)(?:\.\d+)?", out)
    if not version or int(version.group(1)) < MIN_VERSION:
        raise PostgresError(MISSING.format(need=MIN_VERSION, why=f"{bindir}/initdb is {out.strip()!r}"))
    return bindir


def _traversable_by_others(path: Path) -> bool:
    """True if every directory from / down to path has o+x (the postgres user is not root's group)."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))


class Postgres:
    """A PostgreSQL server of our own (never the system cluster on 5432), run as `postgres` when we are root."""

    def __init__(self, bindir: Path, base: Path, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = SETTINGS if settings is None else settings  # server options (-c): the bench turns fsync on
        self.as_root = os.geteuid() == 0
        # A base such as pytest's /tmp/pytest-of-root (0700): the postgres user could not reach a directory there.
        self.owned_tmp = self.as_root and not _traversable_by_others(base)
        self.root = Path(tempfile.mkdtemp(prefix="vesper-pg-", dir="/tmp")) if self.owned_tmp else base
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._names = itertools.count(1)

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the postgres user if we are root (PostgreSQL refuses to run as root)."""
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run([*prefix, *map(str, args)], cwd=self.root, capture_output=True, text=True)

    def init(self) -> None:
        """initdb: a cluster whose superuser is `vesper`, trusted on loopback (a test server, nothing to guard)."""
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                why = "no `postgres` user to run the server as; `make test` installs PostgreSQL"
                raise PostgresError(why) from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        flags = ["-A", "trust", "-U", SUPERUSER, "--encoding=UTF8", "--locale=C", "--no-sync"]
        done = self._run(self.bindir / "initdb", "-D", self.data, *flags)
        if done.returncode:
            raise PostgresError(f"initdb failed:\n{done.stdout}{done.stderr}")

    def start(self, attempts: int = 3) -> None:
        """Start on a free port (retried: another process may take the port between the probe and the bind)."""
        for _ in range(attempts):
            self.port = free_port()
            options = ["-p", str(self.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1"]
            options += [arg for key, value in self.settings.items() for arg in ("-c", f"{key}={value}")]
            # -l: without a log file the server inherits pg_ctl's stdout and capture_output would wait forever.
            pg_ctl = [self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30"]
            done = self._run(*pg_ctl, "-o", shlex.join(options), "start")
            if done.returncode == 0:
                return
        log = self.log.read_text() if self.log.exists() else ""
        raise PostgresError(f"PostgreSQL did not start:\n{done.stdout}{done.stderr}\n{log}")

    def stop(self) -> None:
        """Stop at once (the data is thrown away) and remove the data directory."""
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root if self.owned_tmp else self.data, ignore_errors=True)

    def url(self, dbname: str) -> str:
        """A libpq URL for one database of this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:  # CREATE DATABASE: no transaction
            admin.execute(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open on it."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
