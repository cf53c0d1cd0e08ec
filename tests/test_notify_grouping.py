"""The grouping of events into messages, as a table of cases with time passed in (no database, no clock)."""

from __future__ import annotations

from typing import Any

import pytest

from shared import notify_text
from shared.notify_config import Rule
from vesper_ingest.notify.grouping import Grouper, Message

T0 = 1_800_000_000.0
_ids = iter(range(1, 10**9))


def alert(device: str, subsystem: str = "Audio", state: str = "CRITICAL", message: str | None = "hot") -> dict:
    """An `alert` event as the stream carries it."""
    severity = "warning" if state == "WARNING" else "critical"
    payload = {"subsystem": subsystem, "state": state, "message": message, "previous_state": None}
    return {"id": next(_ids), "type": "alert", "severity": severity, "source_id": device, "payload": payload}


def cleared(device: str, subsystem: str = "Audio") -> dict:
    """An `alert_cleared` event."""
    payload = {"subsystem": subsystem, "previous_state": "CRITICAL"}
    return {"id": next(_ids), "type": "alert_cleared", "severity": "info", "source_id": device, "payload": payload}


def liveness(device: str, type_: str) -> dict:
    """A `device_offline` or `device_online` event."""
    severity = "warning" if type_ == "device_offline" else "info"
    payload = {"last_seen": "2027-01-15T08:00:00.000Z"}
    return {"id": next(_ids), "type": type_, "severity": severity, "source_id": device, "payload": payload}


def grouper(**rule: Any) -> Grouper:
    """One rule on channel ops, 30 s window unless told otherwise."""
    return Grouper([Rule(channel="ops", **{"group_wait_s": 30.0, **rule})], public_url="")


def run(g: Grouper, timeline: list[tuple[float, dict | None]]) -> list[Message]:
    """Offer each event at its time (None: just let time pass), collecting what closes."""
    out: list[Message] = []
    for at, event in timeline:
        out += g.close_due(T0 + at)
        if event is not None:
            g.offer(event, T0 + at)
    return out


def test_one_critical_alert_is_one_message_after_the_window() -> None:
    """Nothing before group_wait_s passes; then one message naming the device and the alert."""
    g = grouper()
    first = alert("bell-1")
    assert run(g, [(0, first), (29.9, None)]) == []
    [message] = run(g, [(30, None)])
    assert message.channel == "ops" and message.event_ids == [first["id"]]
    assert message.title == "Vesper: 1 critical alert" and "bell-1: Audio CRITICAL: hot" in message.body
    assert message.notify_type == "failure"
    assert run(g, [(100, None)]) == []  # told once


def test_a_storm_is_one_message_with_counts_and_at_most_twenty_lines() -> None:
    """500 devices offline in a few seconds: one message, the count in its title, "and 480 more"."""
    g = grouper(types=("alert", "device_offline"))
    timeline: list[tuple[float, dict | None]] = [
        (i / 100, liveness(f"bell-{i:03d}", "device_offline")) for i in range(500)
    ]
    [message] = run(g, [*timeline, (40, None)])
    assert message.title == "Vesper: 500 devices offline"
    assert message.body.count("\n") == 20 and message.body.endswith("and 480 more")
    assert len(message.event_ids) == 500
    [back] = run(g, [(50 + i / 100, liveness(f"bell-{i:03d}", "device_online")) for i in range(500)] + [(90, None)])
    assert back.title == "Vesper: 500 devices back online" and back.notify_type == "success"


@pytest.mark.parametrize(
    ("timeline", "titles"),
    [
        # A blip: cleared before its group went out tells no one.
        ([(0, alert("b", state="WARNING")), (5, cleared("b"))], []),
        ([(0, liveness("b", "device_offline")), (5, liveness("b", "device_online"))], []),
        # Cleared after it was told: a resolved message.
        ([(0, alert("b")), (40, cleared("b"))], ["Vesper: 1 critical alert", "Vesper: 1 alert cleared"]),
        # Escalation after being told: a new message; the same severity again: none.
        (
            [(0, alert("b", state="WARNING")), (40, alert("b", state="WARNING", message="x")), (50, alert("b"))],
            ["Vesper: 1 warning", "Vesper: 1 critical alert"],
        ),
        # A blip inside a group with other items: only the blip is dropped.
        ([(0, alert("a")), (1, alert("b")), (2, cleared("b"))], ["Vesper: 1 critical alert"]),
    ],
)
def test_windows(timeline: list, titles: list[str]) -> None:
    """What each channel hears for each sequence (min_severity warning)."""
    g = grouper(min_severity="warning")
    assert [m.title for m in run(g, [*timeline, (200, None), (400, None)])] == titles


def test_min_severity_and_types_filter() -> None:
    """A warning under a critical rule, and a type the rule does not list, open nothing."""
    g = grouper(min_severity="critical", types=("alert",))
    assert run(g, [(0, alert("b", state="WARNING")), (1, liveness("c", "device_offline")), (60, None)]) == []


def test_resolved_false_says_nothing_of_recoveries() -> None:
    """resolved = false: the problem is told, its end is not."""
    g = grouper(resolved=False)
    assert [m.title for m in run(g, [(0, alert("b")), (40, cleared("b")), (100, None)])] == ["Vesper: 1 critical alert"]


def test_reminders_repeat_while_active_and_stop_when_resolved() -> None:
    """repeat_after_s: a reminder per period while still active, none after it cleared."""
    g = grouper(repeat_after_s=100.0)
    titles = [m.title for m in run(g, [(0, alert("b")), (30, None), (129, None), (130, None), (231, None)])]
    assert titles == ["Vesper: 1 critical alert", "Still active: 1 critical alert", "Still active: 1 critical alert"]
    assert [m.title for m in run(g, [(240, cleared("b")), (280, None), (500, None)])] == ["Vesper: 1 alert cleared"]


def test_zero_window_sends_at_once() -> None:
    """group_wait_s = 0: the message is due the moment its event arrives."""
    g = grouper(group_wait_s=0.0)
    g.offer(alert("b"), T0)
    assert [m.title for m in g.close_due(T0)] == ["Vesper: 1 critical alert"]


def test_text_is_plain_and_bounded() -> None:
    """Control characters go, newlines become spaces, each device string is cut to 200 characters."""
    hostile = "x\x1b[31mred\u202e\nline2" + "y" * 500
    g = grouper(group_wait_s=0.0)
    g.offer(alert("b", subsystem="Audio\x00", message=hostile), T0)
    [message] = g.close_due(T0)
    line = message.body.splitlines()[0]
    assert "\x1b" not in line and "\u202e" not in line and "\x00" not in line and "line2" in line
    assert len(notify_text.clean(hostile)) == 200


def test_a_tagged_rule_hears_only_devices_holding_a_tag() -> None:
    """tags = ["north"]: the registry's tags decide (here a lookup passed in)."""
    g = Grouper(
        [Rule(channel="ops", tags=("north",), group_wait_s=0.0)], tags_of=lambda d: {"north"} if d == "a" else set()
    )
    g.offer(alert("a"), T0)
    g.offer(alert("b"), T0)
    [message] = g.close_due(T0)
    assert "a: Audio" in message.body and "b: Audio" not in message.body


def test_a_forgotten_device_is_told_of_anew() -> None:
    """After a forget, the same problem is news again (nothing held suppresses it)."""
    g = grouper(group_wait_s=0.0)
    g.offer(alert("a"), T0)
    assert len(g.close_due(T0)) == 1
    g.forget({"a"})
    g.offer(alert("a"), T0 + 1)
    assert [m.title for m in g.close_due(T0 + 1)] == ["Vesper: 1 critical alert"]


def flapping_ended(device: str, state: str, subsystem: str = "Audio") -> dict:
    """An `alert_flapping_ended` event naming the state the subsystem settled in."""
    payload = {"subsystem": subsystem, "state": state}
    kind = "alert_flapping_ended"
    return {"id": next(_ids), "type": kind, "severity": "info", "source_id": device, "payload": payload}


def test_flapping_that_settles_is_told_as_the_change_to_its_state() -> None:
    """Told critical, then it flapped: settling cleared is a recovery; settling critical again tells nothing new."""
    g = grouper()
    [told] = run(g, [(0, alert("bell-1")), (30, None)])
    [recovered] = run(g, [(100, flapping_ended("bell-1", "CLEARED")), (130, None)])
    assert "bell-1: Audio cleared (was flapping)" in recovered.body
    assert run(g, [(200, alert("bell-2")), (230, None)])[0].event_ids != told.event_ids
    assert run(g, [(300, flapping_ended("bell-2", "CRITICAL")), (400, None)]) == []
    [news] = run(g, [(500, flapping_ended("bell-3", "FAILED")), (530, None)])
    assert "bell-3: Audio FAILED: no longer flapping" in news.body


def test_a_change_waiting_in_its_group_when_flapping_starts_is_dropped() -> None:
    """Flapping hides the recovery that would cancel it: the waiting problem goes, the flap's end tells."""
    g = grouper()
    flapping = {"id": next(_ids), "type": "alert_flapping", "severity": "warning", "source_id": "bell-1",
                "payload": {"subsystem": "Audio", "transitions": 6}}  # fmt: skip
    assert run(g, [(0, alert("bell-1")), (10, flapping), (40, None)]) == []
    [settled_message] = run(g, [(100, flapping_ended("bell-1", "CRITICAL")), (130, None)])
    assert "bell-1: Audio CRITICAL: no longer flapping" in settled_message.body


def test_a_reminder_names_the_state_now() -> None:
    """CRITICAL then FAILED (the same severity): no new message, and the reminder says FAILED."""
    g = grouper(repeat_after_s=600.0)
    run(g, [(0, alert("bell-1")), (30, None)])
    assert run(g, [(100, alert("bell-1", state="FAILED")), (130, None)]) == []
    [reminder] = run(g, [(630, None)])
    assert "bell-1: Audio FAILED" in reminder.body and "CRITICAL" not in reminder.body


def flooding_ended(device: str, alerts: dict[str, str]) -> dict:
    """A `device_flooding_ended` event naming the device's active alerts now."""
    payload = {"suppressed": 500, "alerts": alerts}
    kind = "device_flooding_ended"
    return {"id": next(_ids), "type": kind, "severity": "info", "source_id": device, "payload": payload}


def test_a_flood_that_ends_tells_what_changed_while_its_events_were_held_back() -> None:
    """Told of Audio, then a flood: at its end Audio has cleared (a recovery), Power is new; Net was never told."""
    g = grouper(min_severity="warning", repeat_after_s=3600.0)
    [told] = run(g, [(0, alert("bell-1")), (30, None)])
    assert "Audio CRITICAL" in told.body
    [after] = run(g, [(100, flooding_ended("bell-1", {"Power": "FAILED"})), (130, None)])
    assert "bell-1: Audio cleared (was flooding)" in after.body
    assert "bell-1: Power FAILED: no longer flooding" in after.body
    [reminder] = run(g, [(130 + 3600, None)])
    assert "Power" in reminder.body and "Audio" not in reminder.body  # a reminder names only what is still wrong
    assert run(grouper(), [(0, flooding_ended("bell-2", {})), (100, None)]) == []  # nothing told, none active: quiet
