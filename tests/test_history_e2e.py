"""History (§13) end to end: outages, an acknowledged incident and a maintenance window through the real processes.

A real broker, the real ingest and web (gunicorn), a real database. bell-1 raises an alert (WARNING, CRITICAL,
WARNING) that an operator acknowledges through the API, goes offline three times, the third inside a device
silence declared from that outage's start, and clears the alert as it comes back from the second. Each outage
lasts until the marker device `clock`, beaten once, goes offline in its turn (one heartbeat timeout): the test
waits for events, never for a fixed time. What the API must say is computed from the stored events' times alone
(GET /api/events), so the figures are checked against what happened, not against the product's arithmetic.
"""

from __future__ import annotations

import csv
import io
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from shared import config as config_mod
from shared.events import iso
from tests.support import Peer, wait_for
from tests.test_lifecycle_e2e import deployed, events, ok

TIMEOUT = 40.0
LIVENESS = {"heartbeat_timeout_s": 2.0, "sweep_interval_s": 0.2}
DEVICE, MARKER, SITE = "bell-1", "clock", "North Tower"
TOLERANCE = 0.01  # "within 1 %": of the ratio
HEADER = "group,name,site,devices,availability,under_99,outages,down_s,mtta_s,mttr_s"


def seconds(text: str) -> float:
    """An ISO-8601 time (an event's `ts`, an episode's bounds) as epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def nth(config: Path, device: str, kind: str, n: int) -> dict[str, Any]:
    """Wait until the device has n stored events of this type; the n-th."""
    found = wait_for(lambda: [e for e in events(config, device) if e["type"] == kind][n - 1 :], TIMEOUT,
                     f"{kind} #{n} of {device}")  # fmt: skip
    return found[0]


def get(config: Path, path: str, **params: str) -> Any:
    """GET with a query string; its JSON answer (200 required)."""
    return ok(config, "GET", f"{path}?{urlencode(params)}")


def text(config: Path, path: str, **params: str) -> str:
    """GET with a query string; its body as text (200 required)."""
    url = f"http://{config_mod.load(config).web.bind}{path}?{urlencode(params)}"
    with urllib.request.urlopen(url, timeout=15) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
        return response.read().decode()


@dataclass
class Story:
    """bell-1's stored events that history follows: the alerts, the ack, the clear, each outage's ends."""

    raised: dict[str, Any]
    acked: dict[str, Any]
    cleared: dict[str, Any]
    offline: list[dict[str, Any]]
    online: list[dict[str, Any]]
    silence: dict[str, Any]

    def outage(self, n: int) -> tuple[float, float]:
        """The n-th outage (from 1) as [device_offline's ts, device_online's ts)."""
        return seconds(self.offline[n - 1]["ts"]), seconds(self.online[n - 1]["ts"])

    def down(self, n: int, start: float, end: float) -> float:
        """The n-th outage's time within [start, end)."""
        began, ended = self.outage(n)
        return max(0.0, min(ended, end) - max(began, start))


def hold(config: Path, peer: Peer, n: int) -> None:
    """One heartbeat timeout: the marker beats once and goes offline (its n-th time)."""
    peer.publish(f"vesper/{MARKER}/status/heartbeat", {"uptime": n})
    nth(config, MARKER, "device_offline", n)


def live_through(config: Path, peer: Peer) -> Story:
    """bell-1's alert, its ack, three outages (the third silenced) and the clear; what the events say of them."""
    ok(config, "PATCH", f"/api/devices/{DEVICE}", {"site": SITE})
    for state in ("WARNING", "CRITICAL", "WARNING"):  # alerts are live signs: bell-1 is online from the first
        peer.publish(f"vesper/{DEVICE}/status/alerts", {"subsystem": "Audio", "state": state, "msg": "amp"})
    raised = nth(config, DEVICE, "alert", 1)
    nth(config, DEVICE, "alert", 3)
    answer = ok(config, "POST", f"/api/devices/{DEVICE}/alerts/Audio/ack", {"note": "rope checked"})
    assert answer["acknowledged"]["by"] == "local"
    acked = nth(config, DEVICE, "alert_acknowledged", 1)
    nth(config, DEVICE, "device_offline", 1)  # its beats stopped with the alerts
    hold(config, peer, 1)
    peer.publish(f"vesper/{DEVICE}/status/heartbeat", {"uptime": 1})
    nth(config, DEVICE, "device_online", 1)
    nth(config, DEVICE, "device_offline", 2)
    hold(config, peer, 2)
    peer.publish(f"vesper/{DEVICE}/status/alerts", {"subsystem": "Audio", "state": "CLEARED"})  # back, and cleared
    cleared = nth(config, DEVICE, "alert_cleared", 1)
    third = nth(config, DEVICE, "device_offline", 3)
    window = {"device": DEVICE, "starts_at": third["ts"], "duration_s": 600, "comment": "rope replaced"}
    silence = ok(config, "POST", "/api/silences", window, 201)  # maintenance, declared as the outage began
    hold(config, peer, 3)
    peer.publish(f"vesper/{DEVICE}/status/heartbeat", {"uptime": 3})
    nth(config, DEVICE, "device_online", 3)
    found = events(config, DEVICE)
    kinds = [e["type"] for e in found if e["type"] in ("alert", "alert_cleared", "device_offline", "device_online")]
    assert kinds == ["alert"] * 3 + ["device_offline", "device_online"] * 2 + [
        "alert_cleared", "device_offline", "device_online"], kinds  # fmt: skip
    offline, online = ([e for e in found if e["type"] == kind] for kind in ("device_offline", "device_online"))
    assert cleared["ts"] == online[1]["ts"]  # one message: the same transaction, the same time
    return Story(raised, acked, cleared, offline, online, silence)


def expected_episodes(story: Story) -> list[dict[str, Any]]:
    """bell-1's episodes as its events tell them, newest first: three outages (the third silenced), one incident."""
    outages = [
        {"kind": "outage", "device_id": DEVICE, "subsystem": None, "started": off["ts"], "ended": on["ts"],
         "worst": "offline", "acknowledged": None, "silenced": n == 2, "first_event": off["id"],
         "last_event": on["id"]}  # fmt: skip
        for n, (off, on) in enumerate(zip(story.offline, story.online, strict=True))
    ]
    incident = {"kind": "incident", "device_id": DEVICE, "subsystem": "Audio", "started": story.raised["ts"],
                "ended": story.cleared["ts"], "worst": "CRITICAL",
                "acknowledged": {"at": story.acked["ts"], "by": "local"}, "silenced": False,
                "first_event": story.raised["id"], "last_event": story.cleared["id"]}  # fmt: skip
    return [*reversed(outages), incident]


def shown(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields of each episode that the events decide."""
    keys = ("kind", "device_id", "subsystem", "started", "ended", "worst", "acknowledged", "silenced",
            "first_event", "last_event")  # fmt: skip
    return [{k: e.get(k) for k in keys} for e in episodes]


def check_episodes(config: Path, story: Story) -> None:
    """Must show 1: the outages and the acknowledged incident in the device's history and in /api/incidents."""
    start, end = iso(seconds(story.raised["ts"]) - 1.0), story.online[2]["ts"]
    history = get(config, f"/api/devices/{DEVICE}/history", **{"from": start, "to": end})
    assert (history["device_id"], history["from"], history["to"]) == (DEVICE, start, end)
    assert set(history["periods"]) == {"24h", "7d", "30d", "90d"} and history["truncated"] is False
    assert shown(history["episodes"]) == expected_episodes(story), history["episodes"]
    for episode in history["episodes"]:
        assert abs(episode["duration_s"] - (seconds(episode["ended"]) - seconds(episode["started"]))) < 0.002
    listed = get(config, "/api/incidents", device=DEVICE, **{"from": start, "to": end})
    assert listed == history["episodes"]
    incidents = get(config, "/api/incidents", device=DEVICE, kind="incident", **{"from": start, "to": end})
    assert incidents == history["episodes"][-1:]
    assert get(config, "/api/incidents", kind="blind", **{"from": start, "to": end}) == []  # nothing unknown


def availability(config: Path, start: str, end: str) -> dict[str, Any]:
    """bell-1's availability over [start, end) per GET /api/devices/{id}/history."""
    return get(config, f"/api/devices/{DEVICE}/history", **{"from": start, "to": end})["availability"]


def check_availability(config: Path, story: Story) -> tuple[str, str, float]:
    """Must show 2: over a window from the middle of the first outage to just after the second, the API's
    availability is what the events imply; returns that window and the ratio."""
    first = story.outage(1)
    start, end = iso(sum(first) / 2), iso(story.outage(2)[1] + 0.25)  # before the silence, in the past now
    begin, until = seconds(start), seconds(end)
    down = story.down(1, begin, until) + story.down(2, begin, until)
    implied = 1 - down / (until - begin)
    found = availability(config, start, end)
    assert abs(found["ratio"] - implied) <= TOLERANCE, (found, implied)
    assert abs(found["down_s"] - down) < 0.01 and abs(found["counted_s"] - (until - begin)) < 0.01, found
    assert found["silenced_s"] == 0 and found["unknown_s"] == 0, found
    return start, end, implied


def check_silence(config: Path, story: Story) -> None:
    """Must show 3: the third outage is inside the silence (from its start): its time is left out of both."""
    start, end = story.online[0]["ts"], story.online[2]["ts"]  # the second outage, then the silenced third
    begin, until = seconds(start), seconds(end)
    assert seconds(story.silence["starts_at"]) == story.outage(3)[0]
    second, third = story.down(2, begin, until), story.down(3, begin, until)
    without_it = 1 - second / (until - begin - third)  # the window as if the third outage's time were not in it
    counted_down = 1 - (second + third) / (until - begin)  # what the silence must not give
    assert without_it - counted_down > 5 * TOLERANCE  # the two readings are told apart
    found = availability(config, start, end)
    assert abs(found["ratio"] - without_it) <= TOLERANCE, (found, without_it, counted_down)
    assert abs(found["silenced_s"] - third) < 0.01 and abs(found["down_s"] - second) < 0.01, found


def check_reports(config: Path, story: Story, start: str, end: str, implied: float) -> None:
    """Must show 4: the report by device (JSON and CSV) and by site (CSV) over the window of must show 2."""
    window = {"from": start, "to": end}
    report = get(config, "/api/reports/availability", group_by="device", **window)
    [row] = [r for r in report["rows"] if r["group"] == DEVICE]
    assert (row["site"], row["devices"], row["under_99"]) == (SITE, 1, 1), row
    assert abs(row["availability"] - implied) <= TOLERANCE, (row, implied)
    for group in ("device", "site"):
        body = text(config, "/api/reports/availability", group_by=group, format="csv", **window)
        assert body.splitlines()[0] == HEADER, body
        rows = {r["group"]: r for r in csv.DictReader(io.StringIO(body))}
        mine = rows[DEVICE if group == "device" else SITE]
        assert (mine["site"] if group == "device" else mine["group"], mine["devices"]) == (SITE, "1"), body
        assert abs(float(mine["availability"]) - implied) <= TOLERANCE, (mine, implied)
    whole = {"from": iso(seconds(story.raised["ts"]) - 1.0), "to": story.online[2]["ts"]}
    [row] = [r for r in get(config, "/api/reports/availability", group_by="device", **whole)["rows"]
             if r["group"] == DEVICE]  # fmt: skip
    assert abs(row["mtta_s"] - (seconds(story.acked["ts"]) - seconds(story.raised["ts"]))) < 0.002, row


def test_outages_an_acknowledged_incident_and_a_silence_in_history(make_config, start_ingest, start_web, peer):
    config = deployed(make_config, start_ingest, start_web, None, liveness=LIVENESS)
    story = live_through(config, peer)
    check_episodes(config, story)
    start, end, implied = check_availability(config, story)
    check_silence(config, story)
    check_reports(config, story, start, end, implied)
