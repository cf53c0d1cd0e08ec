"""Escalation (§14) end to end: the real ingest and web (gunicorn), a real broker, two real webhooks (ops, pager).

Where a test asserts that a device is never escalated, it waits for the escalation of a marker told after that
device's problem was told (so due later) and checks what the pager got before it: a channel's messages go in
order, and problems due earlier go in the same message or an earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared import notify_text, store
from tests.receivers import Webhook
from tests.support import wait_for
from tests.test_lifecycle_e2e import CRITICAL, TIMEOUT, await_event, await_message, mentions, ok
from tests.test_notify_e2e import rule, with_notify

AFTER_S = 8.0  # long enough for an acknowledgement over the web to land first on a busy machine
HEADING = notify_text.escalation_heading(AFTER_S)


@pytest.fixture
def pager() -> Iterator[Webhook]:
    """The second channel's receiver: the one escalations go to."""
    hook = Webhook()
    yield hook
    hook.close()


def deployed(make_config: Callable[..., Path], start_ingest, start_web, ops: Webhook, pager: Webhook) -> Path:
    """A rule telling ops and escalating to pager after AFTER_S; the ingest, then the web."""
    escalating = rule("ops", group_wait_s=0.5, escalate_after_s=AFTER_S, escalate_to="pager")
    config = with_notify(make_config(), {"ops": ops.url, "pager": pager.url}, [escalating])
    start_ingest(config)
    start_web(config)
    return config


def alert(peer, device: str, state: str = "CRITICAL") -> None:
    """The device reports its Audio alert in this state."""
    peer.publish(f"vesper/{device}/status/alerts", {**CRITICAL, "state": state})


def told(peer, hook: Webhook, device: str) -> None:
    """The device's critical alert, and wait until ops was told of it."""
    alert(peer, device)
    await_message(hook, device, what="Vesper: ")


def escalated(pager: Webhook, device: str) -> int:
    """Wait for the device's escalation; how many pager messages name it."""
    await_message(pager, device, what=HEADING, timeout=AFTER_S + TIMEOUT)
    return len(mentions(pager, device))


def test_unacknowledged_is_escalated_once_acknowledged_or_cleared_never(
    make_config, start_ingest, start_web, peer, webhook, pager
):
    """bell-open, bell-ack and bell-clear told together; acknowledged / cleared in time; then a marker told."""
    config = deployed(make_config, start_ingest, start_web, webhook, pager)
    for device in ("bell-open", "bell-ack", "bell-clear"):
        alert(peer, device)
    for device in ("bell-open", "bell-ack", "bell-clear"):
        await_message(webhook, device, what="Vesper: ")
    ok(config, "POST", "/api/devices/bell-ack/alerts/Audio/ack", {"note": "on it"})
    alert(peer, "bell-clear", "CLEARED")
    await_event(config, "bell-ack", "alert_acknowledged")
    await_event(config, "bell-clear", "alert_cleared")
    assert pager.messages == [], "acknowledged too late for this machine: raise AFTER_S"
    told(peer, webhook, "marker")
    assert escalated(pager, "marker") == 1
    assert len(mentions(pager, "bell-open")) == 1
    assert mentions(pager, "bell-ack") == [] and mentions(pager, "bell-clear") == []
    assert all(m["title"].startswith(HEADING) and m["type"] == "failure" for m in pager.messages)
    rows = ok(config, "GET", "/api/notifications?limit=100")["notifications"]
    assert {(r["channel"], r["escalation"]) for r in rows} == {("ops", False), ("pager", True)}


def test_a_silence_holds_it_until_it_ends(make_config, start_ingest, start_web, peer, webhook, pager):
    """bell-s silenced after it was told: not escalated while the silence lasts (a later marker is), then once."""
    config = deployed(make_config, start_ingest, start_web, webhook, pager)
    told(peer, webhook, "bell-s")
    silence = ok(config, "POST", "/api/silences", {"device": "bell-s", "duration_s": 600, "comment": "ladder"}, 201)
    assert pager.messages == [], "silenced too late for this machine: raise AFTER_S"
    told(peer, webhook, "marker")
    assert escalated(pager, "marker") == 1
    assert mentions(pager, "bell-s") == []
    ok(config, "DELETE", f"/api/silences/{silence['id']}", status=204)
    assert escalated(pager, "bell-s") == 1
    told(peer, webhook, "marker-2")
    assert escalated(pager, "marker-2") == 1 and len(mentions(pager, "bell-s")) == 1


def test_kill_nine_between_the_message_and_the_escalation(make_config, start_ingest, peer, webhook, pager, read_db):
    """The ingest killed after telling ops, and again after the escalation: pager gets it, queued once."""
    escalating = rule("ops", group_wait_s=0.5, escalate_after_s=AFTER_S, escalate_to="pager")
    config = with_notify(make_config(), {"ops": webhook.url, "pager": pager.url}, [escalating])
    ingest = start_ingest(config)
    told(peer, webhook, "bell-k")
    ingest.kill()
    ingest = start_ingest(config)
    assert escalated(pager, "bell-k") >= 1
    ingest.kill()
    start_ingest(config)
    told(peer, webhook, "marker")
    assert escalated(pager, "marker") == 1

    def pager_rows() -> list[dict]:
        rows = store.notifications(read_db(), 1000)
        return [r for r in rows if r["channel"] == "pager" and r["status"] == "sent"]

    rows = wait_for(lambda: len(pager_rows()) == 2 and pager_rows(), TIMEOUT, "both escalations sent")
    assert sum("bell-k: " in r["body"] for r in rows) == 1 and all(r["escalation"] for r in rows)
    assert {m["message"] for m in mentions(pager, "bell-k")} == {r["body"] for r in rows if "bell-k" in r["body"]}
