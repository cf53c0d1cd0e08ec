"""The device list while the fleet changes (§7): paging under change, never-reported devices, the summary,
and migration 5's backfill, through the API with an in-process ingest on the same SQLite file."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from shared.severity import ALERT_SEVERITY, HEALTH_ORDER
from shared.store import dialect
from tests import test_registry_api
from tests.support import FakeClock
from tests.test_device_query import ORDERS, WARNING, next_url
from tests.test_ingest_inprocess import CLEARED, CRITICAL, events, heartbeat, message
from tests.test_registry_api import TIMEOUT, delete, get, import_csv, patch
from vesper_ingest.service import Ingest
from vesper_web import create_app

client = test_registry_api.client  # fixtures: the app's test client, and an in-process Ingest on its database
ingest = test_registry_api.ingest

STEP = 0.01  # fake seconds between changes: the whole walk stays well inside every device's timeout
PLACEHOLDERS = {"dev-070": {"name": "Grey"}, "dev-140": {}}  # registered, never report


def hear(ingest: Ingest, clock: FakeClock, device_id: str, *alerts: tuple[bytes, int]) -> None:
    """The device's heartbeat and alerts (payload, mid), a moment later."""
    clock.advance(STEP)
    ingest.process([heartbeat(ingest, device_id), *(message(ingest, device_id, "alerts", a, mid=m) for a, m in alerts)])


def forget(client: FlaskClient, ingest: Ingest, clock: FakeClock, device_id: str) -> None:
    """DELETE the device while the ingest carries the forget out in its sweep."""
    clock.advance(STEP)
    delete(client, ingest, device_id)


@pytest.fixture
def twenty(client: FlaskClient, ingest: Ingest, clock: FakeClock) -> list[str]:
    """dev-010 ... dev-200: dev-030 offline, dev-050 critical, dev-120 warning, two never reported, some named."""
    fleet = [f"dev-{n:03d}" for n in range(10, 201, 10)]
    for device_id, fields in PLACEHOLDERS.items():
        patch(client, device_id, fields)
    for n, device_id in enumerate(fleet):
        if n % 3 == 0 and device_id not in PLACEHOLDERS:
            patch(client, device_id, {"name": f"{'Bell' if n % 2 else 'bell'} {n % 4}"})  # ties, in both cases
    ingest.process([heartbeat(ingest, "dev-030")])
    clock.advance(TIMEOUT / 2)
    for device_id in fleet:
        if device_id not in PLACEHOLDERS and device_id != "dev-030":
            alerts = {"dev-050": [(CRITICAL, 1)], "dev-120": [(WARNING, 2)]}.get(device_id, [])
            hear(ingest, clock, device_id, *alerts)
    ingest.sweep(clock.advance(TIMEOUT / 2))  # dev-030 goes offline, no other
    health = Counter(d["health"] for d in get(client, "/api/devices"))
    assert health == {"ok": 15, "unknown": 2, "offline": 1, "critical": 1, "warning": 1}
    return fleet


@pytest.mark.parametrize("sort", ORDERS)
def test_paging_while_devices_come_go_and_change(
    client: FlaskClient, ingest: Ingest, clock: FakeClock, twenty: list[str], sort: str
) -> None:
    mids = itertools.count(10)
    changes = {  # after page k: health changes (which also move last_seen) and deletions
        0: lambda: (hear(ingest, clock, "dev-100", (CRITICAL, next(mids))), forget(client, ingest, clock, "dev-160")),
        1: lambda: (
            hear(ingest, clock, "dev-150", (WARNING, next(mids))),
            forget(client, ingest, clock, "dev-030"),
            forget(client, ingest, clock, "dev-140"),
        ),
        2: lambda: (hear(ingest, clock, "dev-100", (CLEARED, next(mids))), forget(client, ingest, clock, "dev-190")),
    }
    deleted = {"dev-160": 0, "dev-030": 1, "dev-140": 1, "dev-190": 2}  # the page after which each goes
    moved = {"dev-100", "dev-150"} if sort in ("severity", "last_seen", "-last_seen") else set()
    pages: list[list[str]] = []
    added: dict[str, int] = {}
    url: str | None = f"/api/devices?sort={sort}&limit=3"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        pages.append([d["id"] for d in response.get_json()])
        url = next_url(response)
        k = len(pages) - 1
        if k < 5:  # new ids on both sides of the cursor (in id order), heard or only registered
            for device_id in (f"dev-005-{k}", f"dev-995-{k}"):
                hear(ingest, clock, device_id)
                added[device_id] = k
            patch(client, f"dev-006-{k}", {"name": f"Aaa {k}"})
            added[f"dev-006-{k}"] = k
        changes.get(k, lambda: None)()
        assert len(pages) < 60, "the links never end"
    assert len(pages[-1]) <= 3 and all(len(page) == 3 for page in pages[:-1])
    shown = Counter(i for page in pages for i in page)
    assert {i for i, n in shown.items() if n > 1} <= moved  # only a device whose sort key changed shows twice
    throughout = set(twenty) - set(deleted) - moved
    assert {i: shown[i] for i in throughout} == dict.fromkeys(throughout, 1)
    for device_id, k in deleted.items():
        assert all(device_id not in page for page in pages[k + 1 :]), device_id
    if sort == "id":  # the keyset: an id past the cursor is still to come, one before it was passed
        cursor_at = {k: pages[k][-1] for k in range(len(pages))}
        for device_id, k in added.items():
            assert shown[device_id] == (1 if device_id > cursor_at[k] else 0), device_id


def test_a_device_that_changes_health_is_not_shown_twice_by_id(
    client: FlaskClient, ingest: Ingest, clock: FakeClock, twenty: list[str]
) -> None:
    first = client.get("/api/devices?limit=5&sort=id")
    hear(ingest, clock, "dev-020", (CRITICAL, 50))  # shown already; now critical
    hear(ingest, clock, "dev-180", (CRITICAL, 51))  # still to come
    url, rest = next_url(first), []
    while url is not None:
        response = client.get(url)
        rest += response.get_json()
        url = next_url(response)
    ids = [d["id"] for d in first.get_json()] + [d["id"] for d in rest]
    assert ids == twenty
    assert next(d for d in rest if d["id"] == "dev-180")["health"] == "critical"


# --- a registered device that never reported ------------------------------------------------


def test_a_registered_device_that_never_reported(
    client: FlaskClient, ingest: Ingest, clock: FakeClock, db_path: Path
) -> None:
    ingest.process([heartbeat(ingest, "bell-3")])
    ingest.sweep(clock.advance(TIMEOUT))  # bell-3 offline
    patch(client, "ghost-a", {"name": "A"})
    patch(client, "ghost-b", {"heartbeat_timeout_s": 1})  # its own short timeout changes nothing either
    heard = [heartbeat(ingest, "bell-1"), heartbeat(ingest, "bell-2"), heartbeat(ingest, "bell-4", retained=True)]
    ingest.process([*heard, message(ingest, "bell-2", "alerts", CRITICAL, mid=2)])
    ghost = get(client, "/api/devices/ghost-a")
    assert (ghost["health"], ghost["liveness"], ghost["first_seen"], ghost["last_seen"]) == (
        "unknown",
        "unknown",
        None,
        None,
    )
    assert [d["id"] for d in get(client, "/api/devices?sort=severity")] == ["bell-2", "bell-3", "bell-4", "ghost-a",
                                                                           "ghost-b", "bell-1"]  # fmt: skip
    assert [d["id"] for d in get(client, "/api/devices?health=unknown&limit=2&sort=severity")] == ["bell-4", "ghost-a"]
    assert get(client, "/api/summary")["health"] == {"critical": 1, "warning": 0, "offline": 1, "unknown": 3, "ok": 1}
    assert get(client, "/api/summary")["devices"] == 6

    ingest.sweep(clock.advance(100 * TIMEOUT))  # far past every timeout: each device that reported goes offline
    offline = [e["source_id"] for e in events(db_path) if e["type"] == "device_offline"]
    assert sorted(offline) == ["bell-1", "bell-2", "bell-3", "bell-4"]
    for device_id in ("ghost-a", "ghost-b"):
        assert get(client, f"/api/devices/{device_id}")["liveness"] == "unknown"
    # bell-2, offline, keeps its critical alert: it counts as critical as well (§12)
    assert get(client, "/api/summary")["health"] == {"critical": 1, "warning": 0, "offline": 4, "unknown": 2, "ok": 0}

    heard_at = clock.advance(1)
    ingest.process([heartbeat(ingest, "ghost-a")])
    ghost = get(client, "/api/devices/ghost-a")
    assert (ghost["health"], ghost["liveness"], ghost["name"]) == ("ok", "online", "A")
    assert ghost["first_seen"] is not None and ghost["first_seen"] == ghost["last_seen"]
    assert [d["id"] for d in get(client, "/api/devices?health=ok")] == ["ghost-a"]
    ingest.sweep(heard_at + TIMEOUT)  # now it has reported, its silence counts
    assert get(client, "/api/devices/ghost-a")["liveness"] == "offline"
    assert get(client, "/api/devices/ghost-b")["liveness"] == "unknown"


# --- the summary ------------------------------------------------------------------------------


def derived(client: FlaskClient, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary the listing implies: what /api/summary must say (an offline device with alerts counts twice)."""
    worst = {d["id"]: _worst(client, d) for d in devices}
    return {
        "devices": len(devices),
        "health": {h: sum(d["health"] == h or worst[d["id"]] == h for d in devices) for h in HEALTH_ORDER},
        "tags": dict(Counter(t for d in devices for t in d["tags"])),
        "sites": dict(Counter(d["site"] for d in devices if d["site"] is not None)),
    }


def _worst(client: FlaskClient, device: dict[str, Any]) -> str | None:
    """An offline device's worst alert's health (its chip besides "offline"), from its page; None for the others."""
    if device["liveness"] != "offline" or not device["active_alerts"]:
        return None
    return ALERT_SEVERITY[get(client, f"/api/devices/{device['id']}")["alerts"][0]["state"]]


def summary(client: FlaskClient) -> dict[str, Any]:
    """GET /api/summary, checked against the listing (the totals of a small fleet: every value is listed)."""
    answer = get(client, "/api/summary")
    for name in ("tags", "sites", "firmware"):
        assert answer.pop(f"{name}_total") == len(answer[name])
    assert answer.pop("firmware") == dict(Counter(d["firmware"] for d in get(client, "/api/devices") if d["firmware"]))
    assert answer == derived(client, get(client, "/api/devices"))
    return answer


def test_summary_stays_true(client: FlaskClient, ingest: Ingest, clock: FakeClock) -> None:
    zero = dict.fromkeys(HEALTH_ORDER, 0)
    assert summary(client) == {"devices": 0, "health": zero, "tags": {}, "sites": {}}
    patch(client, "a", {"tags": ["x", "y"], "site": "S1"})
    patch(client, "b", {"tags": ["y"], "site": "S1"})
    ingest.process([heartbeat(ingest, "c"), heartbeat(ingest, "d"), message(ingest, "d", "alerts", WARNING, mid=2)])
    assert summary(client) == {"devices": 4, "health": {**zero, "ok": 1, "warning": 1, "unknown": 2},
                               "tags": {"x": 1, "y": 2}, "sites": {"S1": 2}}  # fmt: skip
    patch(client, "a", {"tags": ["y", "z"]})
    assert summary(client)["tags"] == {"y": 2, "z": 1}  # x is gone, not 0
    patch(client, "b", {"tags": None, "site": None})
    assert (summary(client)["tags"], summary(client)["sites"]) == ({"y": 1, "z": 1}, {"S1": 1})
    import_csv(client, "id,site,tags\nc,S2,z w\ne,S2,\n")
    assert summary(client)["tags"] == {"y": 1, "z": 2, "w": 1} and summary(client)["sites"] == {"S1": 1, "S2": 2}
    import_csv(client, "id,name\na,Renamed\nc,\n")  # without a tags column, the tags stay
    assert summary(client)["tags"] == {"y": 1, "z": 2, "w": 1} and summary(client)["devices"] == 5
    assert client.delete("/api/devices/a").status_code == 204  # registered only: gone at once
    assert summary(client) == {"devices": 4, "health": {**zero, "ok": 1, "warning": 1, "unknown": 2},
                               "tags": {"z": 1, "w": 1}, "sites": {"S2": 2}}  # fmt: skip
    delete(client, ingest, "c")  # reported: answered once the ingest's sweep forgot its row
    assert summary(client) == {"devices": 3, "health": {**zero, "warning": 1, "unknown": 2}, "tags": {},
                               "sites": {"S2": 1}}  # fmt: skip
    patch(client, "c", {"tags": ["w"]})  # registered again after it was forgotten: a device that never reported
    assert summary(client) == {"devices": 4, "health": {**zero, "warning": 1, "unknown": 3}, "tags": {"w": 1},
                               "sites": {"S2": 1}}  # fmt: skip


# --- migration 5 ------------------------------------------------------------------------------


def test_migration_5_backfills_a_version_4_database(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    conn = store.connect(path)
    with store.write(conn):
        for number, script in enumerate(store.MIGRATIONS[:4], start=1):
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            dialect.set_schema_version(conn, number)
        conn.executemany(
            "INSERT INTO devices (id, first_seen, last_seen, liveness) VALUES (?, 1000, ?, ?)",
            [("a", 1001, "online"), ("b", 1002, "online"), ("c", 1003, "offline"), ("d", 1004, "online"),
             ("e", None, "unknown")],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO device_alerts (device_id, subsystem, state, message, updated_at) VALUES (?, ?, ?, 'm', 1000)",
            [
                ("a", "Audio", "WARNING"),
                ("a", "Motor", "FAILED"),
                ("b", "Audio", "WARNING"),
                ("c", "Audio", "CRITICAL"),
            ],
        )
        conn.executemany(
            "INSERT INTO registry (device_id, name, site, tags, updated_at) VALUES (?, ?, ?, ?, 1000)",
            [("b", "B", "S", json.dumps(["x", "y"])), ("d", None, None, json.dumps(["x"])),
             ("f", "F", "S", json.dumps(["y"])), ("g", None, "T", "[]")],
        )  # fmt: skip
    assert dialect.schema_version(conn) == 4
    conn.close()
    conn = store.open_store(path)
    try:
        assert dialect.schema_version(conn) == len(store.MIGRATIONS)
        rows = conn.execute("SELECT id, first_seen, worst_rank, alert_count FROM devices ORDER BY id").fetchall()
        tags = conn.execute("SELECT tag, device_id FROM device_tags ORDER BY tag, device_id").fetchall()
        counts = dict(conn.execute("SELECT tag, n FROM tag_counts").fetchall())
    finally:
        conn.close()
    assert rows == [("a", 1000, 0, 2), ("b", 1000, 2, 1), ("c", 1000, 1, 1), ("d", 1000, None, 0),
                    ("e", 1000, None, 0), ("f", None, None, 0), ("g", None, None, 0)]  # fmt: skip
    assert tags == [("x", "b"), ("x", "d"), ("y", "b"), ("y", "f")] and counts == {"x": 2, "y": 2}

    app = create_app(config_mod.Config(database=config_mod.DatabaseConfig(path=str(path))))
    web = app.test_client()
    devices = {d["id"]: d for d in get(web, "/api/devices")}
    assert {i: (d["health"], d["active_alerts"]) for i, d in devices.items()} == {
        "a": ("critical", 2), "b": ("warning", 1), "c": ("offline", 1), "d": ("ok", 0), "e": ("unknown", 0),
        "f": ("unknown", 0), "g": ("unknown", 0)}  # fmt: skip
    assert devices["f"]["first_seen"] is None and devices["f"]["name"] == "F"
    assert [d["id"] for d in get(web, "/api/devices?sort=severity")] == ["a", "c", "b", "e", "f", "g", "d"]  # c: §12
    assert [d["id"] for d in get(web, "/api/devices?tag=y")] == ["b", "f"]
    assert get(web, "/api/summary") == {
        "devices": 7, "health": {"critical": 2, "warning": 1, "offline": 1, "unknown": 3, "ok": 1},
        "tags": {"x": 2, "y": 2}, "sites": {"S": 2, "T": 1}, "firmware": {},
        "tags_total": 2, "sites_total": 2, "firmware_total": 0}  # fmt: skip
    patch(web, "b", {"tags": ["y", "z"]})  # the web's tag counts carry on from the backfill
    assert get(web, "/api/summary")["tags"] == {"x": 1, "y": 2, "z": 1}
