"""A slow channel is not a failing one (SPEC §16): the ingest's notifier in process, real Apprise, real receivers.

The ingest runs in this process (no broker: batches are handed to it) with its real channel workers,
so each send goes through Apprise over loopback HTTP or SMTP to a receiver of tests/receivers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from tests.conftest import write_config
from tests.receivers import Mailbox, Webhook
from tests.support import wait_for
from tests.test_notify_e2e import with_notify
from tests.test_notify_inprocess import CRITICAL, queued
from vesper_ingest.batch import Inbound
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

TIMEOUT = 60


@pytest.fixture
def start(tmp_path: Path, db_path: Path) -> Iterator[Callable[..., Ingest]]:
    """Start an ingest whose channels (name: Apprise URL) each get every alert at once (group_wait_s 0)."""
    running: list[Ingest] = []

    def make(channels: dict[str, str], **notify: Any) -> Ingest:
        path = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db_path)
        rules = [{"channel": name, "types": ["alert"], "group_wait_s": 0.0} for name in channels]
        ingest = Ingest(config_mod.load(with_notify(path, channels, rules, **notify)))
        ingest.connected()
        ingest.notifier.start()
        running.append(ingest)
        return ingest

    yield make
    for ingest in running:
        ingest.notifier.stop()
        ingest.writer.close()


def alert(ingest: Ingest, device: str) -> None:
    """One CRITICAL alert of `device`, processed and offered to the notifier."""
    ingest.generation += 1
    ingest.process([Inbound(f"vesper/{device}/status/alerts", CRITICAL, False, 1, 1, ingest.generation)])
    ingest.outbox.flush()


def rows(db: Path, channel: str) -> list[dict[str, Any]]:
    """The channel's stored messages, oldest first."""
    return [m for m in queued(db) if m["channel"] == channel]


def all_sent(db: Path, channel: str, count: int) -> list[dict[str, Any]]:
    """The channel's messages once there are `count` and every one is sent, else []."""
    mine = rows(db, channel)
    return mine if len(mine) == count and all(m["status"] == "sent" for m in mine) else []


def test_a_receiver_answering_after_6_s_gets_each_message_once(start, db_path: Path, webhook: Webhook) -> None:
    """Apprise's own read timeout is 4 s: before send_timeout_s reached it, each attempt failed and was repeated."""
    webhook.delay_s = 6.0
    ingest = start({"slow": webhook.url})
    alert(ingest, "a")
    alert(ingest, "b")
    wait_for(lambda: len(webhook.arrived) > 2 or all_sent(db_path, "slow", 2), TIMEOUT, "both rows sent")
    sent = all_sent(db_path, "slow", 2)
    assert sent and webhook.arrived == [str(m["id"]) for m in sent]  # one request each, in order, with the stored id
    assert [m["attempts"] for m in sent] == [1, 1] and len(webhook.messages) == 2


def test_a_slow_channel_never_delays_another(start, db_path: Path, webhook: Webhook) -> None:
    """The fast channel gets a message queued after the slow one's first send began, while that send is held."""
    fast = Webhook()
    try:
        webhook.delay_s = 25.0  # held until released (within the default send_timeout_s of 30 s)
        ingest = start({"slow": webhook.url, "fast": fast.url})
        alert(ingest, "a")
        webhook.wait(lambda h: h.holding == 1, TIMEOUT, "the slow receiver holding the first message")
        alert(ingest, "b")
        fast.wait(lambda h: len(h.messages) == 2, TIMEOUT, "both messages at the fast receiver")
        assert webhook.holding == 1 and webhook.attempts == 0  # the slow one still holds its first request
        webhook.release.set()
        slow_rows = wait_for(lambda: all_sent(db_path, "slow", 2), TIMEOUT, "the slow channel's rows sent")
        fast_rows = wait_for(lambda: all_sent(db_path, "fast", 2), TIMEOUT, "the fast channel's rows sent")
        assert webhook.arrived == [str(m["id"]) for m in slow_rows]
        assert fast.arrived == [str(m["id"]) for m in fast_rows]
    finally:
        fast.close()


def test_a_retried_message_carries_the_same_id(start, db_path: Path, webhook: Webhook) -> None:
    """A 500 then a 200: two requests with one X-Vesper-Message-Id, the stored message's."""
    webhook.statuses = [500]
    ingest = start({"hook": webhook.url})
    alert(ingest, "a")
    [row] = wait_for(lambda: all_sent(db_path, "hook", 1), TIMEOUT, "the row sent")
    assert webhook.arrived == [str(row["id"])] * 2 and len(webhook.messages) == 1
    assert row["attempts"] == 2 and "500" in (row["last_error"] or "")


def test_send_timeout_s_is_the_receivers_time(start, db_path: Path, webhook: Webhook) -> None:
    """With send_timeout_s = 1 a receiver taking 3 s is a failed attempt (Apprise's own 4 s no longer applies)."""
    webhook.delay_s = 3.0
    ingest = start({"hook": webhook.url}, send_timeout_s=1)
    alert(ingest, "a")
    wait_for(lambda: [m for m in rows(db_path, "hook") if m["status"] == "failed"], TIMEOUT, "a failed attempt")
    webhook.release.set()  # answers at once from now on
    [row] = wait_for(lambda: all_sent(db_path, "hook", 1), TIMEOUT, "the row sent")
    assert webhook.arrived == [str(row["id"])] * row["attempts"] and row["attempts"] >= 2


def test_other_services_carry_the_id_in_the_body(start, db_path: Path, mailbox: Mailbox) -> None:
    """An email has no header of ours: its body's last line names the stored message id."""
    ingest = start({"mail": mailbox.url})
    alert(ingest, "a")
    mailbox.wait(1, TIMEOUT)
    [row] = wait_for(lambda: all_sent(db_path, "mail", 1), TIMEOUT, "the row sent")
    body = mailbox.messages[0].get_body(("plain",)).get_content().strip()
    assert body.splitlines()[-1] == f"Message id: {row['id']}" and row["body"] in body
