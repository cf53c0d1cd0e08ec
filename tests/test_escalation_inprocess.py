"""Escalation (§14) in the ingest, in process: a fake clock, the real store (SQLite or PostgreSQL), no sender.

What the database holds carries it: a restart (or a standby taking over) between the first message and the
escalation neither loses nor repeats it, and the store marks each problem escalated once (compare-and-set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import notify_text, store
from tests.support import FakeClock
from tests.test_notify_inprocess import queued
from tests.test_notify_lifecycle import ack, end_now, later, send, silence, started
from vesper_ingest.service import Ingest

WINDOW_S = 5.0
AFTER_S = 600.0


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An ingest telling ops, escalating to pager after 10 min (neither is sent to: run() is not called)."""
    notify = "[notify]\n"
    for name in ("ops", "pager"):
        notify += f'[[notify.channels]]\nname = "{name}"\nurl = "json://127.0.0.1:9/{name}"\n'
    notify += f'[[notify.rules]]\nchannel = "ops"\ngroup_wait_s = {WINDOW_S}\n'
    notify += f'escalate_after_s = {AFTER_S}\nescalate_to = "pager"\n'
    ing = started(tmp_path, db_path, clock, notify)
    yield ing
    ing.writer.close()


def told_to(db_path: Path, channel: str) -> list[dict]:
    """The messages queued for a channel, oldest first."""
    return [m for m in queued(db_path) if m["channel"] == channel]


def test_told_then_escalated_once(ingest, clock, db_path) -> None:
    """ops at once; pager 10 min later, once; the row says when."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    assert len(told_to(db_path, "ops")) == 1 and told_to(db_path, "pager") == []
    later(ingest, clock, AFTER_S - 1)
    assert told_to(db_path, "pager") == []
    later(ingest, clock, 1 + WINDOW_S)
    [esc] = told_to(db_path, "pager")
    assert esc["title"] == "Unacknowledged for 10 min: 1 critical alert" and esc["escalation"] is True
    assert esc["body"] == "bell-1: Audio CRITICAL: x" and told_to(db_path, "ops")[0]["escalation"] is False
    later(ingest, clock, 10 * AFTER_S)
    assert len(told_to(db_path, "pager")) == 1


def test_a_restart_between_the_message_and_the_escalation_carries_on(ingest, clock, db_path) -> None:
    """The due time is in notify_told: the next ingest (a restart, or a standby) escalates on time, once."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    ingest.writer.close()
    clock.now += AFTER_S / 2
    again = Ingest(ingest.cfg, clock=clock)
    again.connected()
    later(again, clock, AFTER_S / 2 + WINDOW_S)
    assert len(told_to(db_path, "pager")) == 1
    again.writer.close()
    third = Ingest(ingest.cfg, clock=clock)  # and one after the escalation: nothing again
    third.connected()
    later(third, clock, AFTER_S)
    assert len(told_to(db_path, "pager")) == 1
    third.writer.close()
    ingest.writer = store.Writer(db_path)  # for the fixture's teardown


def test_an_acknowledgement_before_the_time_stops_it(ingest, clock, db_path) -> None:
    """Acknowledged over the web's command queue at 5 min: never escalated; the row's due time is cleared."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    later(ingest, clock, AFTER_S / 2)
    ack(db_path, "bell-1")
    ingest.sweep(clock.now)
    later(ingest, clock, 1)
    later(ingest, clock, 3 * AFTER_S)
    assert told_to(db_path, "pager") == []
    [row] = store.load_state(ingest.writer.conn)[2]
    assert row[6] == 1 and row[7] is None and row[8] is None  # acked, escalate_at, escalated_at


def test_a_silence_holds_it_until_it_ends(ingest, clock, db_path) -> None:
    """A device silence from 5 min to 30 min: nothing at 10 min; escalated when it is ended (early, at 20 min)."""
    send(ingest, "bell-1", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    silence_id = silence(db_path, clock.now + AFTER_S / 2, clock.now + 3 * AFTER_S, device="bell-1")
    later(ingest, clock, AFTER_S + WINDOW_S)
    later(ingest, clock, AFTER_S / 2)
    assert told_to(db_path, "pager") == []
    end_now(db_path, silence_id, clock.now)
    later(ingest, clock, 1)
    [esc] = told_to(db_path, "pager")
    assert notify_text.is_escalation(esc["title"])
    later(ingest, clock, 5 * AFTER_S)
    assert len(told_to(db_path, "pager")) == 1


def test_the_store_marks_each_problem_once(ingest, clock, db_path) -> None:
    """mark_escalated is a compare-and-set: a second call (or one on an acknowledged row) marks nothing."""
    send(ingest, "bell-1", "CRITICAL")
    send(ingest, "bell-2", "CRITICAL")
    later(ingest, clock, WINDOW_S)
    due = clock.now + AFTER_S
    keys = [("bell-1", "Audio"), ("bell-2", "Audio")]
    with ingest.writer.transaction() as conn:
        conn.execute("UPDATE notify_told SET acked = 1 WHERE device_id = ?", ("bell-2",))
        assert store.mark_escalated(conn, "0:ops", keys, due - 1) == {}  # not yet due
        marked = store.mark_escalated(conn, "0:ops", keys, due)
        assert marked == {("bell-1", "Audio"): ("critical", "bell-1: Audio CRITICAL: x")}
        assert store.mark_escalated(conn, "0:ops", keys, due + 1) == {}
