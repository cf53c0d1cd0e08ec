"""Silences and acknowledgements in the notifier, in process: time passed in, a real SQLite file, no sender.

Table cases of §9: a silence's start, end and overlap, a silence created while an alert is already
active, a silence ended early, a tag silence; an acknowledgement stopping reminders until a new state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import config as config_mod
from shared import store
from shared.silences import Silence
from tests.conftest import write_config
from tests.support import FakeClock
from tests.test_notify_inprocess import queued
from vesper_ingest.batch import Inbound
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

WINDOW_S = 5.0
_mids = iter(range(1, 10**9))


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An ingest with one channel (never sent to), a 5 s window and hourly reminders."""
    notify = '[notify]\n[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/x"\n'
    notify += f'[[notify.rules]]\nchannel = "ops"\ngroup_wait_s = {WINDOW_S}\nrepeat_after_s = 3600.0\n'
    ing = started(tmp_path, db_path, clock, notify)
    yield ing
    ing.writer.close()


def started(tmp_path: Path, db_path: Path, clock: FakeClock, notify: str) -> Ingest:
    """An ingest (not run: nothing is sent) on the test's database with this [notify] section."""
    path = write_config(  # a month's heartbeat timeout: no device goes offline while hours pass here
        tmp_path / "vesper.toml", broker_mod.free_port(), db_path, liveness={"heartbeat_timeout_s": 30 * 86400.0}
    )
    path.write_text(path.read_text() + notify)
    ing = Ingest(config_mod.load(path), clock=clock)
    ing.connected()
    return ing


def send(ingest: Ingest, device: str, state: str, subsystem: str = "Audio") -> None:
    """One alert message processed as a batch."""
    body = json.dumps({"subsystem": subsystem, "state": state, "msg": "x"}).encode()
    ingest.process([Inbound(f"vesper/{device}/status/alerts", body, False, next(_mids), 1, ingest.generation)])


def later(ingest: Ingest, clock: FakeClock, seconds: float) -> None:
    """Let time pass and the notifier look (as the ingest's loop does at least every second)."""
    clock.now += seconds
    ingest.outbox.flush()


def web(db_path: Path) -> store.Connection:
    """A connection as the web's, for its writes."""
    return store.connect(db_path)


def silence(db_path: Path, start: float, end: float, **matchers: str) -> int:
    """The web's POST /api/silences."""
    conn = web(db_path)
    with store.write(conn):
        silence_id = store.add_silence(conn, Silence(0, starts_at=start, ends_at=end, created_by="local", **{
            "device_id": matchers.get("device"), "tag": matchers.get("tag"), "subsystem": matchers.get("subsystem"),
        }))  # fmt: skip
    conn.close()
    return silence_id


def end_now(db_path: Path, silence_id: int, now: float) -> None:
    """The web's DELETE /api/silences/{id}."""
    conn = web(db_path)
    with store.write(conn):
        assert store.expire_silence(conn, silence_id, now)
    conn.close()


def lines(db_path: Path) -> list[str]:
    """Each queued message's body lines that name a device."""
    return [line for m in queued(db_path) for line in m["body"].splitlines() if line.startswith("bell-")]


def test_a_silenced_alert_tells_no_one_and_is_told_once_at_the_end(ingest, clock, db_path) -> None:
    """Begins inside the silence and is still active at its end: one message then, none before."""
    silence(db_path, clock.now, clock.now + 600, device="bell-1")
    later(ingest, clock, 1)
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, 300)
    assert queued(db_path) == []
    later(ingest, clock, 300)  # the silence's end
    later(ingest, clock, WINDOW_S)
    assert lines(db_path) == ["bell-1: Audio CRITICAL: x"]
    later(ingest, clock, 60)
    assert len(queued(db_path)) == 1


def test_what_began_and_recovered_inside_is_not_told(ingest, clock, db_path) -> None:
    """A blip inside the window: nothing at the end either."""
    silence(db_path, clock.now, clock.now + 600)  # the whole fleet
    later(ingest, clock, 1)
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, 100)
    send(ingest, "bell-1", "CLEARED")
    later(ingest, clock, 600)
    later(ingest, clock, WINDOW_S)
    assert queued(db_path) == []


def test_an_alert_told_before_the_silence_is_not_told_again_at_its_end(ingest, clock, db_path) -> None:
    """Active before the window and throughout: told once, before it; the end adds nothing."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    assert len(queued(db_path)) == 1
    silence(db_path, clock.now, clock.now + 600, device="bell-1")
    later(ingest, clock, 601)
    later(ingest, clock, WINDOW_S)
    assert len(queued(db_path)) == 1


def test_a_silence_created_while_an_alert_waits_in_its_group_holds_it(ingest, clock, db_path) -> None:
    """The alert came 2 s before the silence, its group not yet sent: held, then told at the end."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, 2)
    silence(db_path, clock.now, clock.now + 60, device="bell-1")
    later(ingest, clock, WINDOW_S)
    assert queued(db_path) == []
    later(ingest, clock, 60)
    later(ingest, clock, WINDOW_S)
    assert lines(db_path) == ["bell-1: Audio CRITICAL: x"]


def test_a_silence_ended_early_tells_what_is_still_wrong_then(ingest, clock, db_path) -> None:
    """DELETE ends it now: the end is now."""
    silence_id = silence(db_path, clock.now, clock.now + 3600, device="bell-1")
    later(ingest, clock, 1)
    send(ingest, "bell-1", "WARNING")
    send(ingest, "bell-1", "CRITICAL", subsystem="Motor")
    later(ingest, clock, 10)
    end_now(db_path, silence_id, clock.now)
    later(ingest, clock, 1)
    later(ingest, clock, WINDOW_S)
    assert sorted(lines(db_path)) == ["bell-1: Motor CRITICAL: x"]  # the rule's min_severity is critical


def test_overlapping_silences_hold_until_the_last_ends(ingest, clock, db_path) -> None:
    """Two windows over the same device: the first's end tells nothing while the second holds."""
    silence(db_path, clock.now, clock.now + 100, device="bell-1")
    silence(db_path, clock.now + 50, clock.now + 300, subsystem="Audio")
    later(ingest, clock, 1)
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, 150)
    later(ingest, clock, WINDOW_S)
    assert queued(db_path) == []
    later(ingest, clock, 150)
    later(ingest, clock, WINDOW_S)
    assert lines(db_path) == ["bell-1: Audio CRITICAL: x"]


def test_a_silence_that_has_not_started_silences_nothing(ingest, clock, db_path) -> None:
    """Future windows wait for their start."""
    silence(db_path, clock.now + 100, clock.now + 200, device="bell-1")
    later(ingest, clock, 1)
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    assert len(queued(db_path)) == 1


def test_a_tag_silence_holds_only_the_tagged(ingest, clock, db_path) -> None:
    """Silenced by the registry's tags: the tagged device waits, the other is told now."""
    conn = web(db_path)
    with store.write(conn):
        store.put_entries(conn, ["tags"], [("bell-1", ["north"]), ("bell-2", ["south"])], clock.now)
    conn.close()
    silence(db_path, clock.now, clock.now + 600, tag="north")
    later(ingest, clock, 1)
    send(ingest, "bell-1", "CRITICAL")
    send(ingest, "bell-2", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    assert lines(db_path) == ["bell-2: Audio CRITICAL: x"]
    later(ingest, clock, 600)
    later(ingest, clock, WINDOW_S)
    assert lines(db_path) == ["bell-2: Audio CRITICAL: x", "bell-1: Audio CRITICAL: x"]


def test_a_silence_that_ends_while_the_ingest_is_stopped_is_honoured_at_start(ingest, clock, db_path) -> None:
    """The watched silences are in the database: the next ingest tells what the end owes."""
    silence(db_path, clock.now, clock.now + 60, device="bell-1")
    later(ingest, clock, 1)
    send(ingest, "bell-1", "CRITICAL")
    ingest.writer.close()
    clock.now += 120
    again = Ingest(ingest.cfg, clock=clock)
    again.connected()
    later(again, clock, 1)
    later(again, clock, WINDOW_S)
    assert lines(db_path) == ["bell-1: Audio CRITICAL: x"]
    again.writer.close()
    ingest.writer = store.Writer(db_path)  # for the fixture's teardown


def ack(db_path: Path, device: str, subsystem: str = "Audio") -> None:
    """The web's acknowledgement: a command the ingest carries out in its sweep."""
    conn = web(db_path)
    with store.write(conn):
        store.queue_command(conn, "ack", device, {"subsystem": subsystem, "by": "user alice", "note": "on it"}, 0.0)
    conn.close()


def titles(db_path: Path) -> list[str]:
    """Each queued message's title."""
    return [m["title"] for m in queued(db_path)]


def test_an_acknowledgement_stops_reminders_until_a_new_state(ingest, clock, db_path) -> None:
    """Reminded hourly; acknowledged, no reminder; a new state (FAILED) is unacknowledged: reminders resume."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    later(ingest, clock, 3600)
    assert len(titles(db_path)) == 2
    ack(db_path, "bell-1")
    ingest.sweep(clock.now)
    later(ingest, clock, 1)
    later(ingest, clock, 3 * 3600)
    assert len(titles(db_path)) == 2
    send(ingest, "bell-1", "FAILED")
    later(ingest, clock, 3600 + WINDOW_S)
    assert len(titles(db_path)) == 3
