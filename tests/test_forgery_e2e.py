"""The published topic is a doorbell, not the record (SPEC §16): Mosquitto, the ingest and gunicorn, all real.

Anyone who may publish to the broker may publish on `vesper/console/published`. Whatever is sent there,
a stream client and the API get the events the database holds: a forged event never, the real one with
its id always; garbage is counted on /metrics and moves nothing; a database recreated under a running
web (its ids from 1 again) is followed, not taken for old news.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from shared.events import dumps
from tests.faults.test_web_faults import metrics
from tests.support import Peer, Process, wait_for
from tests.test_sse import recreate
from tests.test_web_e2e import Stream, alert, get_json

TIMEOUT = 60.0
WEB = {"keepalive_s": 0.5}
PUBLISHED = "vesper/console/published"
IGNORED, MALFORMED = "vesper_web_published_ignored_total", "vesper_web_published_malformed_total"


@pytest.fixture
def stack(make_config, start_ingest, start_web) -> tuple[Path, Process, str]:
    """Ingest and web running, the web's bridge connected: (config, ingest, host:port)."""
    cfg = make_config(web=WEB)
    ingest = start_ingest(cfg)
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    wait_for(lambda: get_json(bind, "/healthz")["bridge"]["connected"], TIMEOUT, "the bridge to connect")
    return cfg, ingest, bind


def stored_after(bind: str, after: int, n: int) -> list[dict[str, Any]]:
    """Wait until the API holds n events after `after`; returns them."""

    def found() -> list[dict[str, Any]] | None:
        events = get_json(bind, f"/api/events?after={after}")["events"]
        return events if len(events) >= n else None

    return wait_for(found, TIMEOUT, f"{n} events after {after} to be stored")


def real_alert(peer: Peer, bind: str, after: int, device: str, state: str, msg: str) -> dict[str, Any]:
    """A device's alert, stored by the ingest: the event the API then holds after `after`."""
    peer.publish(f"vesper/{device}/status/alerts", alert("Audio", state, msg))
    (event,) = stored_after(bind, after, 1)
    return event


def forged(event_id: int, msg: str) -> str:
    """A well-formed event no device sent: a CRITICAL alert for bell-1."""
    payload = {"subsystem": "Audio", "state": "CRITICAL", "message": msg, "previous_state": None}
    return dumps({"id": event_id, "ts": "2026-01-01T00:00:00.000Z", "type": "alert", "severity": "critical",
                  "source_id": "bell-1", "payload": payload})  # fmt: skip


def counted(bind: str, name: str) -> float:
    """One counter of the web worker's /metrics (0 while it has none)."""
    return metrics(bind).get(name, 0.0)


def last_id(bind: str) -> int:
    """The id up to which the web worker's hub has delivered."""
    return get_json(bind, "/healthz")["bridge"]["last_event_id"]


def test_a_forged_next_event_never_reaches_a_client_and_the_real_one_does(stack, peer: Peer) -> None:
    _, _, bind = stack
    stream = Stream(bind)
    first = real_alert(peer, bind, 0, "bell-1", "WARNING", "amp warm")
    assert stream.events(1) == [first]
    ignored = counted(bind, IGNORED)
    # The attack: the next id, forged before the real event has it.
    peer.publish(PUBLISHED, forged(first["id"] + 1, "FORGED next"))
    wait_for(
        lambda: counted(bind, IGNORED) > ignored or last_id(bind) > first["id"],  # counted, or (before) delivered
        TIMEOUT,
        "the web to take the forged message",
    )
    real = real_alert(peer, bind, first["id"], "bell-1", "CRITICAL", "amp on fire")
    assert real["id"] == first["id"] + 1
    assert stream.events(1) == [real]  # the stored event with that id, not the forged one
    # The same id forged again once stored, and a batch forging the stored content of both: nothing more.
    peer.publish(PUBLISHED, forged(real["id"], "FORGED again"))
    peer.publish(PUBLISHED, "[" + forged(first["id"], "FORGED old") + "," + forged(real["id"], "FORGED batch") + "]")
    after = real_alert(peer, bind, real["id"], "bell-2", "WARNING", "after the forgeries")
    assert stream.events(1) == [after]
    assert not any(b"FORGED" in line for line in stream.raw)
    api = get_json(bind, "/api/events?after=0")["events"]
    assert [e["id"] for e in api] == [first["id"], real["id"], after["id"]] and "FORGED" not in dumps(api)
    assert counted(bind, IGNORED) == ignored + 1 and counted(bind, MALFORMED) == 0
    stream.close()


def test_malformed_messages_are_counted_and_real_events_follow_without_a_gap(stack, peer: Peer) -> None:
    _, _, bind = stack
    stream = Stream(bind)
    first = real_alert(peer, bind, 0, "bell-1", "WARNING", "before")
    assert stream.events(1) == [first]
    ignored, malformed = counted(bind, IGNORED), counted(bind, MALFORMED)
    next_id = first["id"] + 1
    for payload in [f'{{"id":{next_id},"source_id":[1]}}', b"not json", b"\xff\xfe\x00", f'{{"id":{next_id}}}']:
        peer.publish(PUBLISHED, payload)
    peer.publish(PUBLISHED, forged(next_id + 10**9, "FORGED far ahead"))  # well-formed, an id far in the future
    for i, state in enumerate(("WARNING", "CRITICAL", "FAILED")):  # after them on the topic (the broker keeps order)
        peer.publish("vesper/bell-3/status/alerts", alert("Motor", state, f"real {i}"))
    real = stored_after(bind, first["id"], 3)
    assert [e["id"] for e in real] == [next_id, next_id + 1, next_id + 2]
    assert stream.events(3) == real  # in order, no gap, the stored content: the garbage moved nothing
    assert not any(b"FORGED" in line for line in stream.raw)
    wait_for(lambda: counted(bind, MALFORMED) == malformed + 4 and counted(bind, IGNORED) == ignored + 5,
             TIMEOUT, "the five messages to be counted: four malformed, all ignored")  # fmt: skip
    assert last_id(bind) == real[-1]["id"]
    stream.close()


def test_a_recreated_database_is_followed_by_a_running_web(stack, start_ingest, peer: Peer, db_path: Path) -> None:
    cfg, ingest, bind = stack
    stream = Stream(bind)
    old = [real_alert(peer, bind, i, "bell-1", state, "old") for i, state in enumerate(("WARNING", "CRITICAL"))]
    old.append(real_alert(peer, bind, 2, "bell-2", "WARNING", "old"))
    assert stream.events(3) == old and [e["id"] for e in old] == [1, 2, 3]

    assert ingest.stop(timeout=TIMEOUT) == 0
    recreate(db_path)  # ids from 1 again
    start_ingest(cfg)
    new = [real_alert(peer, bind, 0, "bell-9", "FAILED", "in the new database")]
    assert new[0]["id"] == 1
    assert stream.events(1) == new  # id 1 after 3: not dropped as a duplicate
    for i, device in enumerate(("bell-9", "bell-8")):
        new.append(real_alert(peer, bind, i + 1, device, "WARNING", f"new {i}"))
    assert stream.events(2) == new[1:] and [e["id"] for e in new] == [1, 2, 3]
    wait_for(lambda: last_id(bind) == 3, TIMEOUT, "the web at id 3")
    again = Stream(bind, last_event_id=1)  # a client that resumes in the new database gets its events
    assert again.events(2) == new[1:]
    stream.close()
    again.close()
