"""History for a token limited to sites (§13 × §14), on a real database (both engines): two sites with outages and
incidents (acknowledged, ended, open), a device without a site and one without a registry row, and the monitor's
blind stretch. Limited to north, the store's reads and the routes hold nothing of south (or of the unsited): its
reports' rows and fleet row are its devices' alone and equal what the whole fleet's report says of them; another
site's device history is a 404 worded as for a device that does not exist; the monitor's blind time stays visible.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from shared.store import episodes, history
from shared.store.episodes import Episode
from shared.store.history import availability_report, device_history, incidents, problems
from tests.conftest import database
from vesper_web import create_app
from vesper_web.passwd import token_hash

H, DAY = 3600.0, 86400.0
NOW = time.time()
START = NOW - 7 * DAY
NORTH, SOUTH = ("bell-n1", "bell-n2"), ("bell-s1", "bell-s2")
OTHERS = ("loose-1", "seen-1")  # a registry row without a site; no registry row at all
FIGURES = ("devices", "availability", "under_99", "outages", "down_s", "mtta_s", "mttr_s")


def _episodes() -> list[Episode]:
    """Each device a different outage and incident, so a figure that mixes in another device's shows it."""
    rows = [Episode("blind", "vesper-ingest-test", "", NOW - 3 * DAY, "blind", ended=NOW - 3 * DAY + 600)]
    for n, device in enumerate((*NORTH, *SOUTH, *OTHERS), start=1):
        began = NOW - n * DAY / 2
        rows.append(Episode("outage", device, "", began, "offline", ended=began + n * 300))
        rows.append(Episode("incident", device, f"S{n}", began + H, "CRITICAL", ended=began + H + n * 60,
                            ack_at=began + H + n * 7, ack_by="ops"))  # fmt: skip
        rows.append(Episode("incident", device, "Audio", began + 2 * H, "WARNING"))  # open
    return rows


@pytest.fixture
def seeded(db_path: Path) -> Path:
    conn = store.open_store(db_path)
    try:
        with store.write(conn):
            for device in (*NORTH, *SOUTH, *OTHERS):
                store.mark_alive(conn, device, START - DAY)
            entries = [(d, "north", ["roof"]) for d in NORTH] + [(d, "south", ["roof"]) for d in SOUTH]
            store.put_entries(conn, ["site", "tags"], [*entries, ("loose-1", None, ["roof"])], START - DAY)
            store.set_meta(conn, "history_since", repr(START - DAY))
            episodes.write(conn, _episodes())
    finally:
        conn.close()
    return db_path


@pytest.fixture
def db(seeded: Path) -> Any:
    conn = store.connect(seeded, readonly=True)
    yield conn
    conn.close()


def _report(conn: store.Connection, group_by: str, sites: tuple[str, ...] | None) -> dict[str, Any]:
    return availability_report(conn, START, NOW, NOW, group_by, "UTC", sites)


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[key] for key in FIGURES)


def test_reports_by_site_and_device_are_its_devices_and_equal_the_fleets(db: store.Connection) -> None:
    whole = {r["group"]: r for r in _report(db, "site", None)["rows"]}
    mine = _report(db, "site", ("north",))
    assert [r["group"] for r in mine["rows"]] == ["north"]
    assert _figures(mine["rows"][0]) == _figures(whole["north"])
    assert _figures(mine["fleet"])[:-2] == _figures(whole["north"])[:-2]  # the fleet row: its devices only
    assert (mine["fleet"]["mtta_s"], mine["fleet"]["mttr_s"]) == (whole["north"]["mtta_s"], whole["north"]["mttr_s"])
    by_device = {r["group"]: r for r in _report(db, "device", None)["rows"]}
    mine = _report(db, "device", ("north",))
    assert [r["group"] for r in mine["rows"]] == list(NORTH)
    assert all(_figures(r) == _figures(by_device[r["group"]]) for r in mine["rows"])
    assert {r["site"] for r in mine["rows"]} == {"north"}


def test_reports_by_tag_and_day_count_its_devices_only(db: store.Connection) -> None:
    by_tag = _report(db, "tag", ("north",))
    assert [(r["group"], r["devices"], r["outages"]) for r in by_tag["rows"]] == [("roof", 2, 2)]
    north = _report(db, "site", ("north",))["fleet"]
    by_day = _report(db, "day", ("north",))
    assert sum(r["outages"] for r in by_day["rows"]) == 2 and by_day["fleet"]["outages"] == 2
    assert by_day["fleet"]["down_s"] == north["down_s"] == pytest.approx(300 + 600)
    assert by_day["fleet"]["availability"] == north["availability"]
    both = _report(db, "day", ("north", "south"))["fleet"]
    assert both["outages"] == 4 and both["down_s"] == pytest.approx(300 + 600 + 900 + 1200)


def test_problems_hold_nothing_of_another_site(db: store.Connection) -> None:
    found = problems(db, START, NOW, NOW, 10, ("north",))
    assert {d["device_id"] for d in found["devices"]} == set(NORTH)
    assert {s["subsystem"]: s["incidents"] for s in found["subsystems"]} == {"Audio": 2, "S1": 1, "S2": 1}
    top = problems(db, START, NOW, NOW, 1, ("south",))  # fewer contenders than devices: the same filter
    assert [d["device_id"] for d in top["devices"]] in (["bell-s1"], ["bell-s2"])


@pytest.mark.parametrize("few", [50, 0], ids=["each device by its index", "the brackets filtered"])
def test_incidents_are_its_devices_and_the_monitors_blind_time(
    db: store.Connection, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    monkeypatch.setattr(history, "FEW_DEVICES", few)
    rows, _ = incidents(db, START, NOW, NOW, sites=("north",))
    assert {r["device_id"] for r in rows} == set(NORTH) and len(rows) == 6
    rows, _ = incidents(db, START, NOW, NOW, site="south", sites=("north",))  # another site's filter: nothing
    assert rows == []
    blind, _ = incidents(db, START, NOW, NOW, kind="blind", sites=("north",))
    assert [r["device_id"] for r in blind] == ["vesper-ingest-test"]
    paged, cursor = incidents(db, START, NOW, NOW, limit=4, sites=("north",))
    rest, _ = incidents(db, START, NOW, NOW, limit=4, cursor=cursor, sites=("north",))
    assert [r["id"] for r in paged + rest] == [r["id"] for r in incidents(db, START, NOW, NOW, sites=("north",))[0]]


def test_another_sites_device_history_is_none_as_an_unknown_one(db: store.Connection) -> None:
    assert device_history(db, "bell-s1", START, NOW, NOW, sites=("north",)) is None
    assert device_history(db, "loose-1", START, NOW, NOW, sites=("north",)) is None
    assert device_history(db, "seen-1", START, NOW, NOW, sites=("north",)) is None
    assert device_history(db, "bell-n1", START, NOW, NOW, sites=("north",)) == device_history(
        db, "bell-n1", START, NOW, NOW
    )


@pytest.fixture
def client(seeded: Path, tmp_path: Path) -> FlaskClient:
    """The app with a viewer token limited to north and an admin token (every device)."""
    tokens = [
        {"name": "north", "role": "viewer", "hash": token_hash("vsp_north_secret"), "sites": ["north"]},
        {"name": "all", "role": "admin", "hash": token_hash("vsp_all_secret")},
    ]
    cfg = config_mod.from_dict({"auth": {"tokens": tokens}})
    app: Flask = create_app(config_mod.Config(database=database(seeded, tmp_path), auth=cfg.auth))
    return app.test_client()


def get(client: FlaskClient, url: str, token: str = "north", status: int = 200) -> Any:
    response = client.get(url, headers={"Authorization": f"Bearer vsp_{token}_secret"})
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def test_routes_hold_nothing_of_another_site(client: FlaskClient) -> None:
    foreign = get(client, "/api/devices/bell-s1/history", status=404).get_json()
    unknown = get(client, "/api/devices/bell-zz/history", status=404).get_json()
    assert foreign["error"] == unknown["error"].replace("bell-zz", "bell-s1")
    assert get(client, "/api/devices/bell-n1/history").get_json()["device_id"] == "bell-n1"
    assert get(client, "/api/devices/bell-s1/history", token="all").status_code == 200
    listed = get(client, "/api/incidents").get_json()
    assert {r["device_id"] for r in listed} == set(NORTH)
    for group_by in ("site", "device", "tag", "day"):
        report = get(client, f"/api/reports/availability?group_by={group_by}").get_json()
        assert report["fleet"]["outages"] == 2, group_by
    sites = get(client, "/api/reports/availability?group_by=site").get_json()
    assert [r["group"] for r in sites["rows"]] == ["north"]
    text = get(client, "/api/reports/availability?group_by=device&format=csv").get_data(as_text=True)
    assert [row["group"] for row in csv.DictReader(io.StringIO(text))] == list(NORTH)
    top = get(client, "/api/reports/problems").get_json()
    assert {d["device_id"] for d in top["devices"]} == set(NORTH)
    everything = get(client, "/api/reports/availability?group_by=site", token="all").get_json()
    assert {r["group"] for r in everything["rows"]} == {"north", "south", None}
