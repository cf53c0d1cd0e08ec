"""The alert lifecycle (§9) end to end: the real ingest and web (gunicorn), a real broker, a real webhook.

Each test awaits what it expects. Where it asserts that nothing arrives, it waits for something later
that does (a marker device's message or reminder, another device's offline event) and checks what
came before it: a channel's messages go in order, so what was not there by then was never sent.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from shared import config as config_mod
from tests.receivers import Webhook
from tests.support import wait_for
from tests.test_notify_e2e import rule, with_notify

CRITICAL = {"subsystem": "Audio", "state": "CRITICAL", "msg": "amplifier hot"}
TIMEOUT = 30
REPEAT_S = 2.0


def call(config: Path, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request to the running web, as a script would send it; (status, JSON answer or None)."""
    url = f"http://{config_mod.load(config).web.bind}{path}"
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    return status, json.loads(raw) if raw and raw.strip()[:1] in (b"{", b"[") else None


def ok(config: Path, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    """A request that must answer `status`; its JSON answer."""
    got, answer = call(config, method, path, body)
    assert got == status, (method, path, got, answer)
    return answer


def events(config: Path, device: str) -> list[dict[str, Any]]:
    """A device's stored events, oldest first."""
    return ok(config, "GET", f"/api/events?device={device}&limit=1000")["events"]


def await_event(config: Path, device: str, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Wait until the device has an event of this type; the first one."""
    found = wait_for(lambda: [e for e in events(config, device) if e["type"] == kind], timeout, f"{kind} of {device}")
    return found[0]


def mentions(hook: Webhook, device: str, since: int = 0) -> list[dict[str, Any]]:
    """The messages received (from the since-th on) with a line about the device."""
    line = re.compile(rf"^{re.escape(device)}: ", re.M)
    return [m for m in hook.messages[since:] if line.search(m["message"])]


def await_message(hook: Webhook, device: str, since: int = 0, what: str = "", timeout: float = TIMEOUT) -> None:
    """Wait for a message (from the since-th on) about the device, whose title holds `what`."""
    hook.wait(lambda h: any(what in m["title"] for m in mentions(h, device, since)), timeout,
              f"a message about {device} {what!r}")  # fmt: skip


def all_sent(config: Path) -> int:
    """Wait until every queued notification was delivered; how many there are (one channel: the webhook's count)."""

    def sent() -> tuple[int] | None:
        rows = ok(config, "GET", "/api/notifications?limit=1000")["notifications"]
        return (len(rows),) if all(r["status"] == "sent" for r in rows) else None

    return wait_for(sent, TIMEOUT, "every notification sent")[0]


def alert_of(config: Path, device: str, subsystem: str = "Audio") -> dict[str, Any]:
    """The alert's object in GET /api/devices/{id}."""
    [found] = [a for a in ok(config, "GET", f"/api/devices/{device}")["alerts"] if a["subsystem"] == subsystem]
    return found


def deployed(make_config: Callable[..., Path], start_ingest, start_web, hook: Webhook | None, **sections) -> Path:
    """Config (with a webhook channel and `rules` when a hook is given), the ingest, then the web."""
    rules = sections.pop("rules", [])
    config = make_config(**sections)
    if hook is not None:
        config = with_notify(config, {"hook": hook.url}, rules)
    start_ingest(config)
    start_web(config)
    return config


# --- (a) acknowledge --------------------------------------------------------------------------


def test_an_ack_stops_reminders_until_a_new_state(make_config, start_ingest, start_web, peer, webhook):
    """bell-2 is the marker: its reminders keep coming every period, and bell-1's stop once acknowledged."""
    config = deployed(make_config, start_ingest, start_web, webhook,
                      rules=[rule("hook", group_wait_s=0.5, repeat_after_s=REPEAT_S)])  # fmt: skip
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)
    peer.publish("vesper/bell-2/status/alerts", CRITICAL)
    await_message(webhook, "bell-1", what="Vesper: ")
    await_message(webhook, "bell-1", what="Still active")  # reminders arrive
    answer = ok(config, "POST", "/api/devices/bell-1/alerts/Audio/ack", {"note": "on my way"})
    assert answer["acknowledged"]["by"] == "local" and answer["acknowledged"]["note"] == "on my way"
    [event] = [e for e in events(config, "bell-1") if e["type"] == "alert_acknowledged"]
    assert event["payload"] == {"subsystem": "Audio", "by": "local", "note": "on my way"}
    decided = all_sent(config)  # a reminder decided before the ack may still have been on its way
    for n in range(1, 4):  # three more periods of the marker's reminders: none names bell-1
        webhook.wait(lambda h, n=n: len(mentions(h, "bell-2", decided)) >= n, 3 * REPEAT_S + TIMEOUT / 3,
                     f"reminder {n} of bell-2 after the ack")  # fmt: skip
    assert all("Still active" in m["title"] for m in mentions(webhook, "bell-2", decided))
    assert mentions(webhook, "bell-1", decided) == []
    new_state = len(webhook.messages)
    peer.publish("vesper/bell-1/status/alerts", {**CRITICAL, "state": "FAILED"})  # a new state: unacknowledged
    wait_for(lambda: alert_of(config, "bell-1")["state"] == "FAILED", TIMEOUT, "FAILED stored")
    assert alert_of(config, "bell-1")["acknowledged"] is None
    await_message(webhook, "bell-1", new_state, "Still active", timeout=2 * REPEAT_S + TIMEOUT / 3)
    [reminder] = mentions(webhook, "bell-1", new_state)[:1]
    assert "bell-1: Audio FAILED" in reminder["message"], reminder


# --- (b), (c) silences ------------------------------------------------------------------------


def test_a_silenced_device_tells_no_one_then_once_at_the_end(make_config, start_ingest, start_web, peer, webhook):
    """bell-1 is silenced for 5 s: its alert waits; a blip inside is never told; bell-2 and bell-3 are markers."""
    config = deployed(make_config, start_ingest, start_web, webhook, rules=[rule("hook", group_wait_s=0.5)])
    silence = ok(config, "POST", "/api/silences", {"device": "bell-1", "duration_s": 5, "comment": "rope"}, 201)
    ends_at = datetime.fromisoformat(silence["ends_at"]).timestamp()
    assert ok(config, "GET", "/api/silences")["silences"] == [silence]
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)
    peer.publish("vesper/bell-1/status/alerts", {"subsystem": "Motor", "state": "FAILED"})
    peer.publish("vesper/bell-1/status/alerts", {"subsystem": "Motor", "state": "CLEARED"})
    peer.publish("vesper/bell-2/status/alerts", CRITICAL)
    await_message(webhook, "bell-2")
    wait_for(lambda: events(config, "bell-1"), TIMEOUT, "bell-1's events")
    assert alert_of(config, "bell-1")["silenced_until"] == silence["ends_at"]  # kept and shown
    assert time.time() < ends_at, "the marker came after the silence: too slow to tell"
    assert mentions(webhook, "bell-1") == []
    await_message(webhook, "bell-1")  # the silence's end tells what is still wrong
    assert time.time() >= ends_at - 0.1
    [told] = mentions(webhook, "bell-1")
    assert "bell-1: Audio CRITICAL: amplifier hot" in told["message"] and "Motor" not in told["message"]
    assert alert_of(config, "bell-1")["silenced_until"] is None
    assert ok(config, "GET", "/api/silences")["silences"] == []
    later = len(webhook.messages)
    peer.publish("vesper/bell-3/status/alerts", CRITICAL)
    await_message(webhook, "bell-3", later)
    assert len(mentions(webhook, "bell-1")) == 1  # told once
    assert not any("Motor" in m["message"] for m in webhook.messages)


def test_a_tag_silence_holds_the_tagged_device_and_not_another(make_config, start_ingest, start_web, peer, webhook):
    """Registry tags by PATCH; a silence of the tag: bell-1 (tagged) silent, bell-2 told."""
    config = deployed(make_config, start_ingest, start_web, webhook, rules=[rule("hook", group_wait_s=0.5)])
    assert ok(config, "PATCH", "/api/devices/bell-1", {"tags": ["maint", "north"]})["tags"] == ["maint", "north"]
    silence = ok(config, "POST", "/api/silences", {"tag": "maint", "duration_s": 600}, 201)
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)
    peer.publish("vesper/bell-2/status/alerts", CRITICAL)  # after bell-1's: its message would come first, or with it
    await_message(webhook, "bell-2")
    all_sent(config)
    assert mentions(webhook, "bell-1") == []
    assert alert_of(config, "bell-1")["silenced_until"] == silence["ends_at"]
    assert alert_of(config, "bell-2")["silenced_until"] is None
    assert ok(config, "DELETE", f"/api/silences/{silence['id']}", status=204) is None
    await_message(webhook, "bell-1")  # ended early: told now, once
    assert ok(config, "DELETE", f"/api/silences/{silence['id']}", status=404)["error"]


# --- (d) flapping -----------------------------------------------------------------------------


def test_flapping_is_one_event_then_quiet_then_its_end(make_config, start_ingest, start_web, peer, webhook):
    """4 changes within 3 s flap: the fourth is alert_flapping, the rest are quiet, and nothing is told of them."""
    config = deployed(make_config, start_ingest, start_web, webhook,
                      alerts={"flap_transitions": 4, "flap_window_s": 3.0},
                      rules=[rule("hook", group_wait_s=2.0, min_severity="warning")])  # fmt: skip
    for state in ["WARNING", "CLEARED", "WARNING", "CLEARED", "WARNING", "CLEARED", "CRITICAL"]:
        peer.publish("vesper/bell-1/status/alerts", {"subsystem": "Relay", "state": state})
    flapping = await_event(config, "bell-1", "alert_flapping")
    assert flapping["payload"] == {"subsystem": "Relay", "transitions": 4, "state": "CLEARED"}
    assert flapping["severity"] == "warning"
    wait_for(lambda: alert_of(config, "bell-1", "Relay")["state"] == "CRITICAL", TIMEOUT, "the last state stored")
    shown = alert_of(config, "bell-1", "Relay")
    assert shown["flapping"] is True
    ended = await_event(config, "bell-1", "alert_flapping_ended")
    assert ended["payload"] == {"subsystem": "Relay", "state": "CRITICAL", "changes": 3, "worst": "CRITICAL"}
    assert ended["severity"] == "info"
    kinds = [e["type"] for e in events(config, "bell-1")]
    assert kinds == ["alert", "alert_cleared", "alert", "alert_flapping", "alert_flapping_ended"]
    assert alert_of(config, "bell-1", "Relay")["flapping"] is False
    later = len(webhook.messages)
    peer.publish("vesper/bell-2/status/alerts", CRITICAL)  # the marker
    await_message(webhook, "bell-2", later)
    told = [line for m in mentions(webhook, "bell-1") for line in m["message"].splitlines() if "bell-1" in line]
    assert told == ["bell-1: Relay CRITICAL: no longer flapping"]  # its settled state, and none of the flaps


# --- (e) the subsystem bound ------------------------------------------------------------------


def test_twenty_subsystems_past_a_bound_of_five(make_config, start_ingest, start_web, peer):
    config = deployed(make_config, start_ingest, start_web, None, alerts={"max_subsystems_per_device": 5})
    for n in range(20):
        peer.publish("vesper/bell-1/status/alerts", {"subsystem": f"S{n:02d}", "state": "WARNING"})
    peer.publish("vesper/bell-2/status/alerts", CRITICAL)  # after them: once it is stored, they were applied

    def rejected() -> float:
        text = urllib.request.urlopen(f"http://{config_mod.load(config).web.bind}/metrics", timeout=10).read()
        found = re.search(rb'^vesper_ingest_rejected_total\{reason="too_many_subsystems"\} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    wait_for(lambda: rejected() == 15, TIMEOUT, "15 rejections on /metrics")
    await_event(config, "bell-2", "alert")
    active = ok(config, "GET", "/api/devices/bell-1/alerts")
    assert [a["subsystem"] for a in active] == [f"S{n:02d}" for n in range(5)]
    assert ok(config, "GET", "/api/devices/bell-1")["active_alerts"] == 5
    assert [e["payload"]["subsystem"] for e in events(config, "bell-1")] == [f"S{n:02d}" for n in range(5)]


# --- (f), (g) liveness ------------------------------------------------------------------------


def test_an_offline_devices_alert_is_unconfirmed_until_it_returns(make_config, start_ingest, start_web, peer):
    config = deployed(make_config, start_ingest, start_web, None,
                      liveness={"heartbeat_timeout_s": 2.0, "sweep_interval_s": 0.2})  # fmt: skip
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)
    wait_for(lambda: events(config, "bell-1"), TIMEOUT, "the alert stored")
    assert (alert_of(config, "bell-1")["confirmed"], alert_of(config, "bell-1")["unconfirmed_since"]) == (True, None)
    offline = await_event(config, "bell-1", "device_offline")  # it stopped reporting
    device = ok(config, "GET", "/api/devices/bell-1")
    assert device["liveness"] == "offline" and device["health"] == "offline"
    [shown] = device["alerts"]
    assert (shown["confirmed"], shown["unconfirmed_since"]) == (False, device["last_seen"])
    assert offline["payload"]["last_seen"] == device["last_seen"]
    peer.publish("vesper/bell-1/status/heartbeat", {"uptime": 9})
    await_event(config, "bell-1", "device_online")
    back = alert_of(config, "bell-1")
    assert (back["confirmed"], back["unconfirmed_since"], back["state"]) == (True, None, "CRITICAL")


def test_a_30_s_device_outlives_the_3_s_default(make_config, start_ingest, start_web, peer):
    """fast has the 3 s default, slow 30 s; marker 8 s is the clock: when it goes, slow is still online."""
    config = deployed(make_config, start_ingest, start_web, None,
                      liveness={"heartbeat_timeout_s": 3.0, "sweep_interval_s": 0.2})  # fmt: skip
    assert ok(config, "PATCH", "/api/devices/slow", {"heartbeat_timeout_s": 30})["heartbeat_timeout_s"] == 30
    ok(config, "PATCH", "/api/devices/marker", {"heartbeat_timeout_s": 8})
    beat = time.monotonic()
    for device in ("fast", "slow", "marker"):
        peer.publish(f"vesper/{device}/status/heartbeat", {"uptime": 1})
    await_event(config, "fast", "device_offline")
    assert time.monotonic() - beat >= 2.5
    assert ok(config, "GET", "/api/devices/slow")["liveness"] == "online"
    await_event(config, "marker", "device_offline")
    assert time.monotonic() - beat >= 7.5
    slow = ok(config, "GET", "/api/devices/slow")
    assert (slow["liveness"], slow["health"], slow["heartbeat_timeout_s"]) == ("online", "ok", 30)
    assert events(config, "slow") == []
