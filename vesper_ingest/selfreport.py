"""The leading ingest's report on itself (SPEC §11): its state each sweep, and when it is blind."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from importlib import metadata

from shared import store
from shared.events import NewEvent, iso
from shared.pipeline import STATE_KEY


def version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("vesper-console")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class SelfReport:
    """Broker connection as the ingest saw it, the monitoring events it owes, and the state it records.

    Wall-clock times are what is stored and shown; the interruption deadline runs on the monotonic clock.
    """

    source_id: str  # the events' source: the ingest's MQTT client id (a valid device-id word)
    interrupted_after_s: float
    wall: float
    mono: float
    name: str = field(default_factory=lambda: f"{socket.gethostname()[:48]}:{os.getpid()}")
    connected_at: float | None = None
    lost_at: float | None = None
    lost_mono: float | None = None
    reason: str = "not connected to the broker yet"
    interrupted_since: float | None = None  # a monitoring_interrupted written and not yet resumed

    def __post_init__(self) -> None:
        self.lost_at, self.lost_mono = self.wall, self.mono  # blind from the start until the broker answers

    def load(self, conn: store.Connection) -> None:
        """Take over an interruption an earlier process announced, so it is resumed once, not announced twice."""
        raw = store.get_meta(conn, STATE_KEY)
        try:
            since = json.loads(raw).get("interrupted_since") if raw else None
        except (ValueError, AttributeError):
            since = None
        if isinstance(since, int | float):
            self.interrupted_since = float(since)

    def connected(self, wall: float) -> None:
        """The broker accepted the connection."""
        self.connected_at, self.lost_at, self.lost_mono = wall, None, None

    def disconnected(self, wall: float, mono: float, reason: str) -> None:
        """The broker is gone, or refused us, or cannot be reached."""
        self.reason = reason[:200]
        if self.lost_at is None:
            self.connected_at, self.lost_at, self.lost_mono = None, wall, mono

    def events(self, wall: float, mono: float) -> list[NewEvent]:
        """monitoring_interrupted once blind for interrupted_after_s; monitoring_resumed once seeing again."""
        if self.lost_mono is None and self.interrupted_since is not None:
            since, self.interrupted_since = self.interrupted_since, None
            payload = {"since": iso(since), "down_s": round(wall - since)}
            return [NewEvent("monitoring_resumed", self.source_id, payload)]
        blind = self.lost_mono is not None and mono - self.lost_mono >= self.interrupted_after_s
        if blind and self.interrupted_since is None:
            self.interrupted_since = self.lost_at
            payload = {"since": iso(self.lost_at), "reason": self.reason}
            return [NewEvent("monitoring_interrupted", self.source_id, payload)]
        return []

    def state(self, wall: float) -> dict[str, object]:
        """What the web reads: the sweep's time, the broker connection, who and which version."""
        return {
            "name": self.name,
            "version": version(),
            "last_sweep_at": wall,
            "broker_connected": self.lost_at is None,
            "connected_since": self.connected_at,
            "disconnected_since": self.lost_at,
            "reason": None if self.lost_at is None else self.reason,
            "interrupted_since": self.interrupted_since,
        }

    def record(self, conn: store.Connection, wall: float, mono: float) -> list[NewEvent]:
        """Inside the sweep's transaction: the events owed now, and the state saved."""
        owed = self.events(wall, mono)
        store.set_meta(conn, STATE_KEY, json.dumps(self.state(wall)))
        return owed
