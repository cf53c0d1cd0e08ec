"""The device list at fleet scale (§12): row markers, the offline-critical order and chips, firmware, summary caps.

Through the API on an in-process ingest, both engines (the `app` fixture's database).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared import store
from tests import test_lifecycle_api, test_registry_api
from tests.support import FakeClock
from tests.test_ingest_inprocess import message
from tests.test_lifecycle_api import ack, alert, post_silence
from tests.test_registry_api import TIMEOUT, get, patch
from vesper_ingest import firmware
from vesper_ingest.service import Ingest

client, ingest, flappy = test_registry_api.client, test_registry_api.ingest, test_lifecycle_api.flappy  # fixtures
_mids = iter(range(10_000, 10**9))


def beat(ingest: Ingest, device_id: str, body: Any) -> None:
    """One live heartbeat with this JSON body, as its own batch."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    ingest.process([message(ingest, device_id, "heartbeat", payload, mid=next(_mids))])


def rows(client: FlaskClient, query: str = "") -> dict[str, dict[str, Any]]:
    """GET /api/devices?query as {id: device}."""
    return {d["id"]: d for d in get(client, f"/api/devices?{query}")}


# --- markers ------------------------------------------------------------------------------------


def test_each_row_marks_acknowledged_silenced_flapping_and_unconfirmed(
    client: FlaskClient, flappy: Ingest, clock: FakeClock
) -> None:
    for device_id in ("acked", "hushed", "flappy", "gone", "plain"):
        beat(flappy, device_id, {"uptime": 1})
    alert(flappy, "CRITICAL", "acked")
    ack(client, flappy, "/api/devices/acked/alerts/Audio/ack")
    alert(flappy, "WARNING", "hushed", "Power")
    silence = post_silence(client, {"device": "hushed", "duration_s": 3600})
    for state in ("WARNING", "CLEARED", "WARNING", "CLEARED", "WARNING"):
        clock.advance(1)
        alert(flappy, state, "flappy")
    alert(flappy, "CRITICAL", "gone")
    marks = {i: d["markers"] for i, d in rows(client).items()}
    none = {"acknowledged": 0, "silenced": 0, "flapping": 0, "unconfirmed": 0, "silenced_until": None}
    assert marks == {
        "acked": {**none, "acknowledged": 1},
        "hushed": {**none, "silenced": 1, "silenced_until": silence["ends_at"]},
        "flappy": {**none, "flapping": 1},
        "gone": none,
        "plain": none,
    }
    assert get(client, "/api/devices/acked")["markers"] == marks["acked"]  # its page too
    flappy.sweep(clock.advance(3000))  # the flapping ends; all but "gone" stay in touch
    for device_id in ("acked", "hushed", "flappy", "plain"):
        beat(flappy, device_id, {"uptime": 2})
    flappy.sweep(clock.advance(700))  # "gone" was last heard 3700 s ago: offline, its alert unconfirmed
    assert get(client, "/api/devices/gone")["liveness"] == "offline"
    marks = {i: d["markers"] for i, d in rows(client).items()}
    assert (marks["flappy"], marks["gone"]) == (none, {**none, "unconfirmed": 1})
    assert rows(client, "limit=2&sort=severity")["gone"]["markers"]["unconfirmed"] == 1  # a page marks its rows too


def test_a_silence_by_tag_marks_the_device_until_its_end_and_one_by_subsystem_only_its_alert(
    client: FlaskClient, ingest: Ingest
) -> None:
    patch(client, "bell-1", {"tags": ["crypt"]})
    beat(ingest, "bell-1", {})
    beat(ingest, "bell-2", {})
    alert(ingest, "WARNING", "bell-2", "Power")
    by_tag = post_silence(client, {"tag": "crypt", "duration_s": 600})
    post_silence(client, {"subsystem": "Power", "duration_s": 60})
    marks = {i: d["markers"] for i, d in rows(client).items()}
    assert marks["bell-1"]["silenced_until"] == by_tag["ends_at"]
    assert (marks["bell-2"]["silenced"], marks["bell-2"]["silenced_until"]) == (1, None)


# --- the offline device with a critical alert (§12) -------------------------------------------------


def test_an_offline_device_with_a_critical_alert_sorts_with_the_critical_and_counts_in_both_chips(
    client: FlaskClient, ingest: Ingest, clock: FakeClock
) -> None:
    beat(ingest, "a-gone", {})
    alert(ingest, "CRITICAL", "a-gone")
    ingest.sweep(clock.advance(TIMEOUT))  # a-gone offline, its CRITICAL alert kept (unconfirmed)
    for device_id, state in (("b-crit", "CRITICAL"), ("c-warn", "WARNING"), ("d-ok", None)):
        beat(ingest, device_id, {})
        if state:
            alert(ingest, state, device_id)
    beat(ingest, "e-off", {})
    ingest.sweep(clock.advance(TIMEOUT))
    for device_id in ("b-crit", "c-warn", "d-ok"):
        beat(ingest, device_id, {})
    listed = get(client, "/api/devices?sort=severity")
    assert [d["id"] for d in listed] == ["a-gone", "b-crit", "c-warn", "e-off", "d-ok"]
    assert [d["health"] for d in listed] == ["offline", "critical", "warning", "offline", "ok"]
    assert get(client, "/api/summary")["health"] == {"critical": 2, "warning": 1, "offline": 2, "unknown": 0, "ok": 1}
    assert [d["id"] for d in get(client, "/api/devices?health=critical")] == ["a-gone", "b-crit"]
    assert [d["id"] for d in get(client, "/api/devices?health=offline")] == ["a-gone", "e-off"]
    pages = [[d["id"] for d in get(client, "/api/devices?sort=severity&limit=1")]]
    assert pages == [["a-gone"]]


# --- firmware -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"fw":"v155"}', ("v155", False)),
        ('{"fw":155}', ("155", False)),
        ('{"fw":1.5}', ("1.5", False)),
        ('{"fw":"' + "x" * 64 + '"}', ("x" * 64, False)),
        ('{"fw":"' + "x" * 65 + '"}', (None, True)),
        ('{"fw":""}', (None, True)),
        ('{"fw":"a\\nb"}', (None, True)),
        ('{"fw":true}', (None, True)),
        ('{"fw":{"v":1}}', (None, True)),
        ('{"fw":[1]}', (None, True)),
        ('{"fw":null}', (None, False)),
        ('{"uptime":1}', (None, False)),
        ('{"name":"fw"}', (None, False)),
        ('{"fw":"Zoë <b>"}', ("Zoë <b>", False)),  # unusual, printable: kept as sent (the console shows text)
        (None, (None, False)),
    ],
)
def test_what_is_stored_of_a_firmware_value(body: str | None, expected: tuple[str | None, bool]) -> None:
    assert firmware.version(None if body is None else json.loads(body), "fw") == expected


def test_firmware_is_stored_from_heartbeats_filtered_and_counted(client: FlaskClient, ingest: Ingest) -> None:
    for n in range(5):
        beat(ingest, f"bell-{n}", {"fw": "v155" if n < 3 else 154, "uptime": n})
    beat(ingest, "bell-5", {"uptime": 1})
    stored = {i: d["firmware"] for i, d in rows(client).items()}
    assert stored == {"bell-0": "v155", "bell-1": "v155", "bell-2": "v155", "bell-3": "154", "bell-4": "154",
                      "bell-5": None}  # fmt: skip
    beat(ingest, "bell-0", {"uptime": 9})  # says nothing of its firmware: kept
    beat(ingest, "bell-1", {"fw": {"bad": True}})  # refused, counted, the heartbeat applied
    beat(ingest, "bell-4", {"fw": "v156"})
    listed = rows(client)
    assert [listed[i]["firmware"] for i in ("bell-0", "bell-1", "bell-4")] == ["v155", "v155", "v156"]
    assert listed["bell-1"]["last_heartbeat"] == {"fw": {"bad": True}}
    assert list(rows(client, "firmware=v155")) == ["bell-0", "bell-1", "bell-2"]
    assert list(rows(client, "firmware=154&sort=name")) == ["bell-3"]
    assert get(client, "/api/devices?firmware=" + "x" * 65, 400)["error"].startswith("firmware: ")
    summary = get(client, "/api/summary")
    assert (summary["firmware"], summary["firmware_total"]) == ({"v155": 3, "154": 1, "v156": 1}, 3)
    ingest.sweep(ingest.clock())  # the sweep stores the counters
    assert store.counters(ingest.conn).get(firmware.REFUSED) == 1


# --- the summary's caps ----------------------------------------------------------------------------


def test_the_summary_lists_the_largest_sites_and_tags_and_counts_them_all(client: FlaskClient) -> None:
    for n in range(store.SUMMARY_TOP + 10):
        site, tag = f"Site {n:03d}", f"t{n:03d}"
        for k in range(1 + (n % 3)):
            patch(client, f"d-{n}-{k}", {"site": site, "tags": [tag]})
    summary = get(client, "/api/summary")
    assert (summary["sites_total"], summary["tags_total"]) == (store.SUMMARY_TOP + 10,) * 2
    assert len(summary["sites"]) == len(summary["tags"]) == store.SUMMARY_TOP
    assert min(summary["sites"].values()) >= max(n for s, n in _all_sites(client).items() if s not in summary["sites"])
    # the largest (20 of 3 devices, 20 of 2), then 10 of the 20 of 1 device, ties by name
    assert summary["sites"]["Site 002"] == 3 and "Site 027" in summary["sites"] and "Site 030" not in summary["sites"]
    assert [d["id"] for d in get(client, "/api/devices?site=Site%20057")] == ["d-57-0"]  # still a filter


def _all_sites(client: FlaskClient) -> dict[str, int]:
    counts: dict[str, int] = {}
    for device in get(client, "/api/devices"):
        counts[device["site"]] = counts.get(device["site"], 0) + 1
    return counts


def test_q_counts_up_to_the_cap_and_says_so(client: FlaskClient, db_path: Path) -> None:
    conn = store.open_store(db_path)
    try:
        with store.write(conn):
            ids = [(f"bell-{n:04d}",) for n in range(store.listing.COUNT_CAP + 5)]
            store.put_entries(conn, [], ids, 1.0)
    finally:
        conn.close()
    many = client.get("/api/devices?q=BELL&limit=10")
    assert (many.headers["X-Total-Count"], many.headers["X-Total-Count-Capped"]) == ("1000", "true")
    assert len(many.get_json()) == 10
    few = client.get("/api/devices?q=bell-100&limit=2")  # bell-1000 .. bell-1004
    assert (few.headers["X-Total-Count"], few.headers.get("X-Total-Count-Capped")) == ("5", None)
    whole = client.get("/api/devices?limit=10")
    assert (whole.headers["X-Total-Count"], whole.headers.get("X-Total-Count-Capped")) == ("1005", None)
