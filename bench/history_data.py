"""Synthetic history for the §13 bench: devices x days of episodes built into the real schema, SQLite and PostgreSQL.

~0.5 episodes per device per day (a fifth of the devices five times as troubled as the rest), 30 % outages and
70 % incidents; lengths log-uniform: 85 % minutes, 13 % hours, 2 % days; one open episode at most per (kind,
device, subsystem), none overlapping another of its key; 30 % of incidents acknowledged, 3 % flapping
stretches; 5 % of the devices registered mid-window; a few fleet blind stretches; a few silences (device
maintenance windows, a site's, a tag's, a subsystem's). Ids follow the start times, as the ingest writes them.
The SQLite file is cached under CACHE by its shape; PostgreSQL is loaded from it by COPY.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import store
from shared.silences import Silence
from shared.store import episodes, lifecycle, tables

CACHE = Path("/tmp/vesper-bench-history")
DAY = 86400.0
SUBSYSTEMS = ("FileManager", "TimeKeeper", "Audio", "Power/Main", "Network")
WORST = (("WARNING", 0.6), ("CRITICAL", 0.9), ("FAILED", 1.0))  # cumulative shares of incidents' worst states
LENGTHS = ((0.85, 60.0, 3600.0), (0.98, 3600.0, DAY), (1.0, DAY, 5 * DAY))  # (cumulative share, shortest, longest)
BLIND_SOURCE = "bench-ingest"
TAGS = ("north", "south", "east", "west", "carillon", "chime")
ROW = ("id", "kind", "device_id", "subsystem", "started", "ended", "worst", "changes", "ack_at", "ack_by", "silenced",
       "span", "first_event", "last_event")  # fmt: skip
INSERT = f"INSERT INTO episodes ({', '.join(ROW)}) VALUES ({', '.join('?' for _ in ROW)})"
CHUNK = 100_000


@dataclass(frozen=True)
class Shape:
    """How big: devices, days of history, the registry's sites, episodes per device per day."""

    devices: int = 100_000
    days: int = 400
    sites: int = 20_000
    rate: float = 0.5

    @property
    def name(self) -> str:
        return f"h-{self.devices}x{self.days}-s{self.sites}-r{self.rate:g}"


def device_id(n: int) -> str:
    """The n-th synthetic device's id."""
    return f"d-{n:06d}"


def _length(rng: random.Random) -> float:
    u = rng.random()
    lo, hi = next((lo, hi) for share, lo, hi in LENGTHS if u <= share)
    return lo * (hi / lo) ** rng.random()


class Generator:
    """The episodes of a shape in start order, with the state they leave (open outages, first_seen)."""

    def __init__(self, shape: Shape, now: float, seed: int = 25) -> None:
        self.shape, self.now, self.rng = shape, now, random.Random(seed)
        self.since = now - shape.days * DAY
        rng = self.rng
        self.first_seen = [self.since if rng.random() >= 0.05 else self.since + rng.random() * (now - self.since)
                           for _ in range(shape.devices)]  # fmt: skip
        self.weights = [5.0 if rng.random() < 0.2 else 0.5 for _ in range(shape.devices)]  # mean 1.4
        self.open_outages: set[int] = set()
        self.count = 0

    def blind(self) -> list[tuple[float, float]]:
        """A few fleet blind stretches: (start, end)."""
        rng = self.rng
        count = max(2, self.shape.days // 50)
        starts = sorted(self.since + rng.random() * (self.now - self.since - DAY) for _ in range(count))
        return [(s, s + 300 * (36 ** rng.random())) for s in starts]

    def rows(self) -> Iterator[list[tuple[Any, ...]]]:
        """The rows in chunks, ids in start order, one day at a time."""
        rng, s = self.rng, self.shape
        cum = list(_cumulative(self.weights))
        per_day = s.devices * s.rate
        blind = self.blind()
        ends: dict[tuple[int, str, str], float] = {}
        out: list[tuple[Any, ...]] = []
        for day in range(s.days):
            day_start = self.since + day * DAY
            count = max(0, round(rng.gauss(per_day, math.sqrt(per_day))))
            picked = rng.choices(range(s.devices), cum_weights=cum, k=count)
            todo = sorted((day_start + rng.random() * DAY, n) for n in picked)
            todo += [(b, -1) for b in (x for x, _ in blind) if day_start <= b < day_start + DAY]
            for started, n in sorted(todo):
                if started >= self.now:
                    break
                row = self._row(n, started, ends) if n >= 0 else self._blind(started, blind)
                if row is not None:
                    out.append(row)
                if len(out) >= CHUNK:
                    yield out
                    out = []
        if out:
            yield out

    def _row(self, n: int, started: float, ends: dict[tuple[int, str, str], float]) -> tuple[Any, ...] | None:
        rng = self.rng
        if started < self.first_seen[n]:
            return None
        outage = rng.random() < 0.3
        kind, subsystem = ("outage", "") if outage else ("incident", SUBSYSTEMS[int(rng.random() * len(SUBSYSTEMS))])
        key = (n, kind, subsystem)
        if ends.get(key, 0.0) > started:
            return None
        length = _length(rng)
        ends[key] = ended = started + length
        worst = "offline" if outage else next(w for w, share in WORST if rng.random() <= share)
        changes = 1 if rng.random() >= 0.03 else rng.randint(6, 40)
        ack_at = ack_by = None
        if not outage and rng.random() < 0.3:
            ack_at, ack_by = started + min(length, 30 * 480 ** rng.random()), f"op-{rng.randrange(20)}"
        return self._finish(kind, device_id(n), subsystem, started, ended, worst, changes, ack_at, ack_by, n)

    def _blind(self, started: float, blind: list[tuple[float, float]]) -> tuple[Any, ...]:
        ended = next(e for s, e in blind if s == started)
        return self._finish("blind", BLIND_SOURCE, "", started, ended, "blind", 1, None, None, -1)

    def _finish(self, kind: str, device: str, subsystem: str, started: float, ended: float | None, worst: str,
                changes: int, ack_at: float | None, ack_by: str | None, n: int) -> tuple[Any, ...]:  # fmt: skip
        if ended is not None and ended > self.now:
            ended = None
            if kind == "outage":
                self.open_outages.add(n)
        self.count += 1
        first = int((started - self.since) * 30)  # ~30 events a second across the fleet
        last = first if ended is None else int((ended - self.since) * 30)
        span = -1 if ended is None else episodes.span(ended - started)
        return (self.count, kind, device, subsystem, started, ended, worst, changes, ack_at, ack_by, 0, span, first,
                last)  # fmt: skip


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def registry(shape: Shape, gen: Generator, now: float) -> dict[str, list[tuple[Any, ...]]]:
    """The devices, registry, tags and meta rows of a shape."""
    rng = random.Random(26)
    devices, reg, tags = [], [], []
    for n in range(shape.devices):
        offline = n in gen.open_outages
        devices.append((device_id(n), gen.first_seen[n], now - (3600 if offline else rng.random() * 30),
                        "offline" if offline else "online"))  # fmt: skip
        mine = [TAGS[n % len(TAGS)]] + ([TAGS[4 + n % 2]] if n % 3 == 0 else [])
        site = f"site-{rng.randrange(shape.sites):05d}"
        reg.append((device_id(n), f"Bell {n}", site, "[" + ", ".join(f'"{t}"' for t in mine) + "]", now))
        tags += [(t, device_id(n)) for t in mine]
    return {"devices": devices, "registry": reg, "tags": tags}


def silences(shape: Shape, gen: Generator, now: float) -> list[Silence]:
    """Maintenance windows: one device in 500 for a few hours, a site's day, a tag's hour, a subsystem's week."""
    rng = random.Random(27)
    out = []
    for n in range(0, shape.devices, 500):
        start = gen.since + rng.random() * (now - gen.since)
        out.append(Silence(0, device_id(n), None, None, start, start + 3600 * rng.randint(1, 8), "maintenance", "op-1"))
    start = now - 40 * DAY
    out.append(Silence(0, None, None, None, start, start + DAY, "site works", "op-2", site="site-00001"))
    out.append(Silence(0, None, "chime", None, start, start + 3600, "tag", "op-3"))
    out.append(Silence(0, None, None, "Audio", now - 200 * DAY, now - 193 * DAY, "audio noise", "op-4"))
    return out


def build(conn: store.Connection, shape: Shape, now: float) -> int:
    """Fill a fresh store (migrated) with a shape's history; returns the episodes written."""
    gen = Generator(shape, now)
    conn.execute("BEGIN")
    for index in _episode_indexes(conn):
        conn.execute(f"DROP INDEX {index.name}")
    for chunk in gen.rows():
        conn.executemany(INSERT, chunk)
    for index in _episode_indexes(conn):
        conn.execute(tables.create_index(conn.dialect, "episodes", index))
    rows = registry(shape, gen, now)
    conn.executemany("INSERT INTO devices (id, first_seen, last_seen, liveness) VALUES (?, ?, ?, ?)", rows["devices"])
    conn.executemany(
        "INSERT INTO registry (device_id, name, site, tags, updated_at) VALUES (?, ?, ?, ?, ?)", rows["registry"]
    )
    conn.executemany("INSERT INTO device_tags (tag, device_id) VALUES (?, ?)", rows["tags"])
    conn.execute("INSERT INTO tag_counts (tag, n) SELECT tag, COUNT(*) FROM device_tags GROUP BY tag")
    for silence in silences(shape, gen, now):
        lifecycle.add_silence(conn, silence)
    store.set_meta(conn, "history_since", repr(gen.since))
    store.set_meta(conn, "bench_history_now", repr(now))
    conn.execute("COMMIT")
    return gen.count


def _episode_indexes(conn: store.Connection) -> list[tables.Index]:
    return tables.indexes(conn.dialect, "episodes")


def sqlite_file(shape: Shape, fresh: bool = False) -> tuple[Path, float, float]:
    """The cached SQLite file of a shape (built if missing): its path, its `now`, the build's seconds (0: cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{shape.name}.db"
    if path.exists() and not fresh:
        conn = store.open_store(path)  # a file cached before a newer migration gets it (as a real one would)
        now = float(store.get_meta(conn, "bench_history_now") or 0)
        conn.close()
        if now:
            return path, now, 0.0
    for old in CACHE.glob(f"{shape.name}.db*"):
        old.unlink()
    t0, now = time.monotonic(), time.time()
    part = CACHE / f"{shape.name}.building.db"
    for old in CACHE.glob(f"{part.name}*"):
        old.unlink()
    conn = store.open_store(part)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    build(conn, shape, now)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.move(part, path)
    return path, now, time.monotonic() - t0


def copy_to_postgres(source: Path, url: str) -> float:
    """The SQLite file's rows into a fresh PostgreSQL database (migrated; episodes by COPY); seconds taken."""
    t0 = time.monotonic()
    conn = store.open_store(url)
    lite = store.connect(source, readonly=True)
    raw = conn.raw  # type: ignore[attr-defined]
    with raw.transaction():
        for index in _episode_indexes(conn):
            raw.execute(f"DROP INDEX {index.name}")
        for table, columns in (("episodes", ROW), ("devices", ("id", "first_seen", "last_seen", "liveness")),
                               ("registry", ("device_id", "name", "site", "tags", "updated_at")),
                               ("device_tags", ("tag", "device_id")), ("tag_counts", ("tag", "n")),
                               ("silences", ("device_id", "tag", "subsystem", "starts_at", "ends_at", "comment",
                                             "created_by", "created_at", "site", "device_ids"))):  # fmt: skip
            names = ", ".join(columns)
            with raw.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in lite.execute(f"SELECT {names} FROM {table}"):
                    copy.write_row(row)
        for index in _episode_indexes(conn):
            raw.execute(tables.create_index(conn.dialect, "episodes", index))
        raw.execute("SELECT setval(pg_get_serial_sequence('episodes', 'id'), (SELECT max(id) FROM episodes))")
        for key in ("history_since", "bench_history_now"):
            store.set_meta(conn, key, store.get_meta(lite, key) or "")
    raw.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    lite.close()
    conn.close()
    return time.monotonic() - t0
