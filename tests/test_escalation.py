"""Escalation when nobody acknowledges (§14), the pure rule: the grouper with time passed in, no database, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from shared import notify_text
from shared.notify_config import Rule
from tests.test_notify_grouping import T0, alert, cleared, liveness
from vesper_ingest.notify.grouping import Grouper, Message

AFTER = 900.0
WAIT = 30.0


def grouper(silenced: Any = None, **rule: Any) -> Grouper:
    """One rule telling ops, escalating to pager after 15 min; a 30 s window."""
    fields = {"group_wait_s": WAIT, "escalate_after_s": AFTER, "escalate_to": "pager", **rule}
    return Grouper([Rule(channel="ops", **fields)], public_url="", silenced=silenced)


def acked(device: str, subsystem: str = "Audio") -> dict:
    """An `alert_acknowledged` event."""
    payload = {"subsystem": subsystem, "by": "user alice", "note": None}
    return {"id": 0, "type": "alert_acknowledged", "severity": "info", "source_id": device, "payload": payload}


def step(g: Grouper, at: float) -> list[Message]:
    """What the sink does at T0 + at: close groups, then mark each due escalation (as the store would) and word it."""
    now = T0 + at
    out = g.close_due(now)
    for esc in g.escalations(now):
        told = g.told[esc.rule]
        message = g.escalated(esc, {w: (told[w].category, told[w].line) for w in esc.keys}, now)
        out += [message] if message else []
    return out


def run(g: Grouper, timeline: list[tuple[float, dict | None]]) -> list[Message]:
    """Offer each event at its time (None: just let time pass), collecting every message."""
    out: list[Message] = []
    for at, event in timeline:
        out += step(g, at)
        if event is not None:
            g.offer(event, T0 + at)
    return out


def escalations(messages: list[Message]) -> list[Message]:
    """The escalations among the messages."""
    return [m for m in messages if notify_text.is_escalation(m.title)]


def test_unacknowledged_is_told_to_escalate_to_once_after_the_time() -> None:
    """Told at 30 s; nothing to pager before 30 + 900 + the window; then one message, and never again."""
    g = grouper()
    messages = run(g, [(0, alert("bell-1")), (30, None), (959.9, None)])
    assert [m.channel for m in messages] == ["ops"]
    assert g.next_due() == T0 + 30 + AFTER + WAIT
    [esc] = run(g, [(960, None)])
    assert esc.channel == "pager" and esc.rule == "0:ops"
    assert esc.title == "Unacknowledged for 15 min: 1 critical alert" and esc.body == "bell-1: Audio CRITICAL: hot"
    assert esc.notify_type == "failure" and notify_text.is_escalation(esc.title)
    assert run(g, [(5000, None), (90000, None)]) == [] and g.next_due() is None


@pytest.mark.parametrize("end", [acked("bell-1"), cleared("bell-1")], ids=["acknowledged", "cleared"])
def test_an_acknowledgement_or_the_end_before_the_time_stops_it(end: dict) -> None:
    """Acknowledged or cleared at 900 s: no escalation, ever."""
    g = grouper()
    messages = run(g, [(0, alert("bell-1")), (30, None), (900, end), (960, None), (10_000, None)])
    assert escalations(messages) == []


def test_an_outage_escalates_and_coming_back_stops_it() -> None:
    """device_offline is a problem like any: told, then escalated; a device back before the time is not."""
    g = grouper(types=("alert", "device_offline"))
    timeline = [(0, liveness("bell-1", "device_offline")), (0, liveness("bell-2", "device_offline"))]
    timeline += [(30, None), (500, liveness("bell-2", "device_online")), (960, None)]
    [esc] = escalations(run(g, timeline))
    assert esc.title == "Unacknowledged for 15 min: 1 device offline" and esc.body.startswith("bell-1: ")


def test_a_silence_at_the_due_time_holds_it_until_it_ends() -> None:
    """Silenced from 600 s to 2000 s: nothing at 960 (and no busy loop on it), told once after the silence."""
    window = {"on": True}
    g = grouper(silenced=lambda device, subject, now: window["on"] and T0 + 600 <= now < T0 + 2000)
    assert escalations(run(g, [(0, alert("bell-1")), (30, None), (960, None), (1500, None)])) == []
    assert g.next_due() is None  # held: the notifier does not spin on it
    window["on"] = False  # the silence ended early (DELETE): the sink sees the silences change
    g.unhold()
    [esc] = escalations(run(g, [(1600, None)]))
    assert esc.body == "bell-1: Audio CRITICAL: hot"
    assert run(g, [(3000, None)]) == []


def test_problems_due_within_the_window_are_one_message() -> None:
    """Two alerts told in two messages 30 s apart escalate together: the second is due within the first's window."""
    g = grouper(group_wait_s=WAIT)
    timeline = [(0, alert("bell-1")), (30, alert("bell-2")), (60, None), (959, None), (960, None)]
    messages = run(g, timeline)
    assert len(messages) == 3
    [esc] = escalations(messages)
    assert esc.title == "Unacknowledged for 15 min: 2 critical alerts"
    assert esc.body.splitlines() == ["bell-1: Audio CRITICAL: hot", "bell-2: Audio CRITICAL: hot"]


def test_a_new_state_after_an_acknowledgement_rearms_it_from_then() -> None:
    """Acknowledged at 100 s, FAILED at 2000 s (unacknowledged again): escalated 900 s after that, not before."""
    g = grouper()
    timeline = [(0, alert("bell-1")), (30, None), (100, acked("bell-1")), (2000, alert("bell-1", state="FAILED"))]
    assert escalations(run(g, [*timeline, (2899, None)])) == []
    [esc] = escalations(run(g, [(2930, None)]))
    assert "FAILED" in esc.body


def test_a_change_of_severity_keeps_the_first_due_time() -> None:
    """WARNING told at 30 s, CRITICAL told at 330 s: still due at 30 + 900 (the problem is as old as the first)."""
    g = grouper(min_severity="warning")
    timeline = [(0, alert("bell-1", state="WARNING")), (30, None), (300, alert("bell-1")), (330, None)]
    assert escalations(run(g, [*timeline, (959, None)])) == []
    [esc] = escalations(run(g, [(960, None)]))
    assert esc.title == "Unacknowledged for 15 min: 1 critical alert"


def test_a_rule_without_escalation_never_escalates() -> None:
    """escalate_after_s = 0: told, reminded, never escalated."""
    g = grouper(escalate_after_s=0.0, escalate_to="", repeat_after_s=600.0)
    messages = run(g, [(0, alert("bell-1")), (30, None), (700, None), (10_000, None)])
    assert len(messages) == 3 and escalations(messages) == []


@pytest.mark.parametrize(
    ("after_s", "heading"),
    [
        (5.0, "Unacknowledged for 5 s: "),
        (900.0, "Unacknowledged for 15 min: "),
        (7200.0, "Unacknowledged for 2 h 0 min: "),
    ],
)
def test_the_heading_says_the_time_in_words(after_s: float, heading: str) -> None:
    """The rule's escalate_after_s in words (shared/pipeline.py's duration)."""
    assert notify_text.escalation_heading(after_s) == heading
    assert notify_text.is_escalation(heading + "1 critical alert")


def test_device_strings_stay_plain_text_in_an_escalation() -> None:
    """A subsystem and message with control and bidi characters are cleaned as in any message."""
    g = grouper()
    evil = alert("bell-1", subsystem="Au\x1b[31mdio\u202e", message="hot\nVesper: 0 alerts")
    [esc] = escalations(run(g, [(0, evil), (30, None), (960, None)]))
    assert "\x1b" not in esc.body and "\u202e" not in esc.body and "\n" not in esc.body
    assert not notify_text.is_escalation(notify_text.compose([("critical", "x", "Unacknowledged for 1 s: x")])[0])
