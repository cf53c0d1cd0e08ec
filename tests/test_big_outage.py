"""SPEC §16: a big outage is one message naming the count. The ingest in-process (a fake clock, the real store):
5,000 devices go silent at once (bench/sweep_outage.py does 50,000 and times the sweep; the grouping is the same
at any size), one sweep declares them all offline, and the group's end queues exactly one message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from shared import config as config_mod
from shared import store
from tests.conftest import write_config
from tests.support import FakeClock
from vesper_ingest.service import Inbound, Ingest
from vesper_sim import broker as broker_mod

DEVICES = 5_000
TIMEOUT = 90.0
WAIT = 30.0


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An ingest with one channel and a rule for device_offline (never sent to: run() is not called)."""
    path = write_config(
        tmp_path / "vesper.toml", broker_mod.free_port(), db_path, liveness={"heartbeat_timeout_s": TIMEOUT}
    )
    notify = '[notify]\npublic_url = "https://vesper.example"\n[[notify.channels]]\nname = "ops"\n'
    notify += 'url = "json://127.0.0.1:9/x"\n[[notify.rules]]\nchannel = "ops"\ntypes = ["device_offline"]\n'
    path.write_text(path.read_text() + notify + f"group_wait_s = {WAIT}\n")
    ing = Ingest(config_mod.load(path), clock=clock)
    ing.connected()
    yield ing
    ing.writer.close()


def test_an_outage_of_thousands_is_one_message_naming_the_count(
    ingest: Ingest, clock: FakeClock, app: Flask, read_db: Callable[[], Any]
) -> None:
    """One sweep declares all 5,000 offline (one event each); the window's end makes one message: the count in the
    title, 20 lines, "and 4,980 more"; nothing more is queued after it."""
    ids = [f"tower-{n:05d}" for n in range(DEVICES)]
    ingest.process([Inbound(f"vesper/{d}/status/heartbeat", b"{}", False, 0, 0, ingest.generation) for d in ids])
    clock.advance(TIMEOUT)
    ingest.sweep(clock.now)
    client = app.test_client()
    events = store.events_after(read_db(), 0, limit=DEVICES + 10)
    assert sorted(e["source_id"] for e in events if e["type"] == "device_offline") == ids
    assert client.get("/api/notifications?limit=10").get_json()["notifications"] == []  # the window is open
    clock.advance(WAIT)
    ingest.outbox.flush()
    [message] = client.get("/api/notifications?limit=10").get_json()["notifications"]
    assert message["title"] == "Vesper: 5,000 devices offline"
    lines = message["body"].splitlines()
    assert lines[0] == "tower-00000: offline, last seen " + events[0]["payload"]["last_seen"] + (
        " https://vesper.example/devices/tower-00000"
    )
    assert lines[20:] == ["and 4,980 more", "Console: https://vesper.example/"]
    assert len(message["event_ids"]) == DEVICES
    for _ in range(3):  # later sweeps and flushes add nothing: every device was told of once
        clock.advance(WAIT)
        ingest.sweep(clock.now)
        ingest.outbox.flush()
    assert len(client.get("/api/notifications?limit=10").get_json()["notifications"]) == 1
