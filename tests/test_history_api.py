"""History's API (§13): a device's history, the incident list paged by Link, the reports and their CSV, 400s naming
the parameter; over episodes written straight into the store (the ingest's follower has its own tests)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from shared.store import episodes
from shared.store.episodes import Episode
from tests.conftest import database
from vesper_web import create_app

HOUR, DAY = 3600.0, 86400.0
BERLIN = "Europe/Berlin"
LINK = re.compile(r'<([^>]+)>; rel="next"')


def seed_history(db: Path | str, now: float, incidents: int = 0) -> None:
    """bell-1 (North, tags roof) with an hour's outage 2 days ago and an open CRITICAL Audio incident since a day;
    bell-2 (South) clean; bell-3 (a formula for a site) with a 3-hour outage 10 days ago; `incidents` more on bell-2."""
    conn = store.open_store(db)
    with store.write(conn):
        for device in ("bell-1", "bell-2", "bell-3"):
            store.mark_alive(conn, device, now - 60 * DAY)
        for device, site, tags in (("bell-1", "North", ["roof"]), ("bell-2", "South", []), ("bell-3", "=1+1", [])):
            fields = {"name": f"{site} bell", "site": site, "tags": tags, "notes": None, "heartbeat_timeout_s": None}
            store.put_entry(conn, device, fields, now - 60 * DAY)
        rows = [
            Episode("outage", "bell-1", "", now - 2 * DAY, "offline", ended=now - 2 * DAY + HOUR),
            Episode("incident", "bell-1", "Audio", now - DAY, "CRITICAL", changes=3, ack_at=now - DAY + 600,
                    ack_by="ops"),  # fmt: skip
            Episode("outage", "bell-3", "", now - 10 * DAY, "offline", ended=now - 10 * DAY + 3 * HOUR),
            *(Episode("incident", "bell-2", f"S{i}", now - 5 * DAY + i * 60, "WARNING",
                      ended=now - 5 * DAY + i * 60 + 30) for i in range(incidents)),  # fmt: skip
        ]
        episodes.write(conn, rows)
    conn.close()


@pytest.fixture
def berlin(db_path: Path, tmp_path: Path) -> Flask:
    """The app with history.timezone Europe/Berlin, over the test's database."""
    history = config_mod.HistoryConfig(timezone=BERLIN)
    return create_app(config_mod.Config(database=database(db_path, tmp_path), history=history))


@pytest.fixture
def client(berlin: Flask) -> FlaskClient:
    return berlin.test_client()


def ok(client: FlaskClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_devices_history_has_its_episodes_newest_first_and_its_availability(client: FlaskClient, db_path) -> None:
    now = time.time()
    seed_history(db_path, now)
    found = ok(client, "/api/devices/bell-1/history")
    assert [(e["kind"], e["subsystem"] or "") for e in found["episodes"]] == [("incident", "Audio"), ("outage", "")]
    incident = found["episodes"][0]
    assert incident["ended"] is None and incident["worst"] == "CRITICAL" and incident["changes"] == 3
    assert incident["acknowledged"]["by"] == "ops"
    assert found["availability"]["outages"] == 1 and found["availability"]["incidents"] == 1
    assert found["availability"]["down_s"] == pytest.approx(HOUR, abs=1)
    assert found["availability"]["ratio"] == pytest.approx(1 - HOUR / (30 * DAY), abs=1e-4)
    assert set(found["periods"]) == {"24h", "7d", "30d", "90d"} and found["periods"]["24h"] == 1.0
    assert found["periods"]["7d"] == pytest.approx(1 - HOUR / (7 * DAY), abs=1e-4)
    assert ok(client, "/api/devices/bell-2/history")["episodes"] == []


def test_unknown_device_is_404_and_a_bad_id_400(client: FlaskClient, db_path) -> None:
    seed_history(db_path, time.time())
    assert client.get("/api/devices/bell-9/history").status_code == 404
    assert "never seen" in client.get("/api/devices/bell-9/history").get_json()["error"]
    assert client.get("/api/devices/bad%20id/history").status_code == 400


def test_a_date_is_midnight_in_history_timezone_and_to_is_clipped_to_now(client: FlaskClient, db_path) -> None:
    now = time.time()
    seed_history(db_path, now)
    found = ok(client, "/api/devices/bell-1/history?from=2024-07-01&to=2999-01-01")
    midnight = datetime(2024, 7, 1, tzinfo=ZoneInfo(BERLIN)).timestamp()  # 22:00 UTC the day before (summer time)
    assert datetime.fromisoformat(found["from"]).timestamp() == midnight
    assert found["from"].startswith("2024-06-30T22:00:00")
    assert abs(datetime.fromisoformat(found["to"]).timestamp() - now) < 60
    offset = ok(client, "/api/devices/bell-1/history?from=2024-07-01T00:00:00%2B02:00")
    assert offset["from"] == found["from"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("from=yesterday", "from"),
        ("from=2026-02-30", "from"),
        ("to=2026-01-01T00:00:00", "to"),  # no zone
        ("from=2999-01-01", "from"),  # after now: after to
        ("from=2024-02-02&to=2024-02-01", "from"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("kind=alarm", "kind"),
        ("state=CLEARED", "state"),
        ("open=maybe", "open"),
        ("device=bad%20id", "device"),
        ("tag=NOT_A_TAG", "tag"),
        ("site=a%0Ab", "site"),
        ("device=a&device=b", "device"),
        ("cursor=not-one", "cursor"),
    ],
)
def test_bad_incident_parameters_are_400_naming_them(client: FlaskClient, query: str, named: str) -> None:
    response = client.get(f"/api/incidents?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"].startswith(f"{named}:")


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/api/reports/availability?group_by=week", "group_by"),
        ("/api/reports/availability?format=xml", "format"),
        ("/api/reports/availability?group_by=day&from=2020-01-01", "from"),  # a window of days is bounded
        ("/api/reports/availability?to=tomorrow", "to"),
        ("/api/reports/problems?limit=101", "limit"),
        ("/api/reports/problems?from=x", "from"),
        ("/api/devices/bell-1/history?to=2020-13-01", "to"),
    ],
)
def test_bad_report_parameters_are_400_naming_them(client: FlaskClient, url: str, named: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"].startswith(f"{named}:")


def test_incidents_page_by_link_newest_first_none_missing_none_repeated(client: FlaskClient, db_path) -> None:
    seed_history(db_path, time.time(), incidents=25)
    url, pages, seen = "/api/incidents?kind=incident&limit=10", 0, []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += [(e["started"], e["id"]) for e in response.get_json()]
        pages += 1
        link = LINK.match(response.headers.get("Link", ""))
        url = link.group(1) if link else ""
        assert not link or "kind=incident" in url and "limit=10" in url  # the filters are kept
    assert pages == 3 and len(seen) == 26 == len(set(seen)) and seen == sorted(seen, reverse=True)  # newest start first


def test_incident_filters(client: FlaskClient, db_path) -> None:
    seed_history(db_path, time.time(), incidents=3)
    assert [e["device_id"] for e in ok(client, "/api/incidents?kind=outage")] == ["bell-1", "bell-3"]
    assert [e["subsystem"] for e in ok(client, "/api/incidents?open=true")] == ["Audio"]
    assert {e["device_id"] for e in ok(client, "/api/incidents?site=South")} == {"bell-2"}
    assert [e["device_id"] for e in ok(client, "/api/incidents?tag=roof")] == ["bell-1", "bell-1"]
    assert [e["worst"] for e in ok(client, "/api/incidents?state=CRITICAL")] == ["CRITICAL"]
    assert ok(client, "/api/incidents?from=2020-01-01&to=2020-02-01") == []


def test_availability_by_site_and_by_day(client: FlaskClient, db_path) -> None:
    seed_history(db_path, time.time())
    report = ok(client, "/api/reports/availability?group_by=site")
    rows = {row["group"]: row for row in report["rows"]}
    assert set(rows) == {"North", "South", "=1+1"} and rows["South"]["availability"] == 1.0
    assert rows["North"]["outages"] == 1 and report["fleet"]["devices"] == 3 and report["timezone"] == BERLIN
    days = ok(client, "/api/reports/availability?group_by=day&from=2026-03-28&to=2026-03-30")
    assert [row["group"] for row in days["rows"]] == ["2026-03-28", "2026-03-29"]  # the 29th: 23 h in Berlin


def test_the_csv_has_its_header_and_defuses_formulas(client: FlaskClient, db_path) -> None:
    seed_history(db_path, time.time())
    response = client.get("/api/reports/availability?group_by=site&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert ",".join(lines[0]) == "group,name,site,devices,availability,under_99,outages,down_s,mtta_s,mttr_s"
    assert sorted(line[0] for line in lines[1:]) == ["'=1+1", "North", "South"]
    by_device = client.get("/api/reports/availability?group_by=device&format=csv").get_data(as_text=True)
    assert "bell-1,North bell,North," in by_device and "'=1+1 bell,'=1+1" in by_device


def test_problems_rank_devices_and_subsystems(client: FlaskClient, db_path) -> None:
    seed_history(db_path, time.time(), incidents=2)
    problems = ok(client, "/api/reports/problems?limit=2")
    assert [d["device_id"] for d in problems["devices"]] == ["bell-2", "bell-1"]
    assert len(problems["subsystems"]) == 2 and all(s["incidents"] == 1 for s in problems["subsystems"])
