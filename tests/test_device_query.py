"""GET /api/devices' query (§7 "Queries"): filters, sorts, limit and cursor, as an API user sees them.

One small fleet, built through the API and an in-process ingest, holds every health, named and unnamed
devices, tags and sites; the paging under change, the summary and migration 5 are in test_device_paging.py.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from shared.severity import ALERT_STATES_BY_RANK, HEALTH_ORDER, health, health_sql, standing, standing_sql
from tests.conftest import database, write_config
from tests.support import FakeClock
from tests.test_ingest_inprocess import CLEARED, CRITICAL, heartbeat, message
from tests.test_registry_api import TIMEOUT, get, patch
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod
from vesper_web import create_app

WARNING = b'{"subsystem":"Power","state":"WARNING","msg":"low"}'
RANKS = {"critical": 1, "warning": 2}  # a health's alert rank (CRITICAL, WARNING)
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')

REGISTRY: dict[str, dict[str, Any]] = {
    "ghost": {"name": "zulu", "site": "Depot", "tags": ["spare"]},  # registered, never reports
    "bell-a": {"name": "Alpha", "site": "North", "tags": ["tower", "north"]},
    "bell-b": {"name": "beta", "site": "North Yard", "tags": ["tower"]},
    "bell-c": {"site": "south", "tags": ["crypt"]},
    "bell-d": {"name": "Gamma", "tags": ["tower", "spare"]},
    "bell-f": {"name": "50% off"},
    "Bell-G": {"name": "alpha two"},
    "x-1": {"name": "BETA"},
}
# The orders §7 gives, for the fleet below.
BY_ID = ["Bell-G", "bell-a", "bell-b", "bell-c", "bell-d", "bell-e", "bell-f", "ghost", "x-1", "x_1"]
BY_SEVERITY = ["bell-b", "bell-d", "bell-c", "bell-e", "ghost", "Bell-G", "bell-a", "bell-f", "x-1", "x_1"]
BY_NAME = ["bell-f", "bell-a", "Bell-G", "bell-b", "x-1", "bell-d", "ghost", "bell-c", "bell-e", "x_1"]
BY_LAST_SEEN = ["bell-e", "ghost", "bell-d", "x_1", "bell-a", "Bell-G", "bell-f", "x-1", "bell-c", "bell-b"]
ORDERS = {"id": BY_ID, "severity": BY_SEVERITY, "name": BY_NAME, "last_seen": BY_LAST_SEEN,
          "-last_seen": BY_LAST_SEEN[::-1]}  # fmt: skip
HEALTH = {"bell-b": "critical", "bell-c": "warning", "bell-d": "offline", "bell-e": "unknown", "ghost": "unknown"}


@pytest.fixture(scope="module")
def client(module_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """A test client of the app over one database for the module: every test here only reads (GET)."""
    directory = tmp_path_factory.mktemp("device-query")
    return create_app(config_mod.Config(database=database(module_db_path, directory))).test_client()


@pytest.fixture(scope="module")
def fleet(client: FlaskClient, module_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every health: bell-b critical (and warning), bell-c warning, bell-d offline with a critical alert,
    bell-e unknown (a retained heartbeat), ghost unknown (registered only), the rest ok; each heard in turn."""
    # Built once for the module by an in-process Ingest (never on a broker): the tests only read it, and its clock
    # stands in 2023 (FakeClock), so no answer changes as the module's tests go by.
    toml = write_config(tmp_path_factory.mktemp("device-query-ingest") / "vesper.toml", broker_mod.free_port(),
                        module_db_path, liveness={"heartbeat_timeout_s": TIMEOUT})  # fmt: skip
    clock = FakeClock()
    ingest = Ingest(config_mod.load(toml), clock=clock)
    ingest.connected()
    try:
        return _build(client, ingest, clock)
    finally:
        ingest.conn.close()


def _build(client: FlaskClient, ingest: Ingest, clock: FakeClock) -> dict[str, Any]:
    """The fleet, through the API (the registry) and the ingest (what the devices said); the devices by id."""
    for device_id, fields in REGISTRY.items():
        patch(client, device_id, fields)
    mids = itertools.count(10)
    ingest.process([heartbeat(ingest, "bell-d"), message(ingest, "bell-d", "alerts", CRITICAL, mid=next(mids))])
    ingest.sweep(clock.advance(TIMEOUT))  # bell-d goes offline; ghost, never heard, does not
    for device_id, alerts in [("x_1", []), ("bell-a", []), ("Bell-G", []), ("bell-f", [CRITICAL, CLEARED]),
                              ("x-1", []), ("bell-c", [WARNING]), ("bell-b", [WARNING, CRITICAL])]:  # fmt: skip
        clock.advance(1)
        sent = [message(ingest, device_id, "alerts", alert, mid=next(mids)) for alert in alerts]
        ingest.process([heartbeat(ingest, device_id), *sent])
    ingest.process([heartbeat(ingest, "bell-e", retained=True)])
    devices = {d["id"]: d for d in get(client, "/api/devices")}
    assert {d: devices[d]["health"] for d in BY_ID} == {d: HEALTH.get(d, "ok") for d in BY_ID}
    return devices


def ids(client: FlaskClient, query: str, status: int = 200) -> list[str]:
    """The ids GET /api/devices?query answers, in its order."""
    return [d["id"] for d in get(client, f"/api/devices?{query}", status)]


def error(client: FlaskClient, query: str) -> str:
    """The error of a 400 answer to GET /api/devices?query."""
    return get(client, f"/api/devices?{query}", 400)["error"]


def next_url(response: Any) -> str | None:
    """The Link header's rel="next" target, or None when the header is absent."""
    link = response.headers.get("Link")
    if link is None:
        return None
    found = NEXT.match(link)
    assert found, link
    return found.group(1)


def pages_of(client: FlaskClient, url: str) -> list[list[dict[str, Any]]]:
    """Follow rel="next" from url to the end: the devices of each page."""
    pages: list[list[dict[str, Any]]] = []
    next_: str | None = url
    while next_ is not None:
        response = client.get(next_)
        assert response.status_code == 200, response.get_data(as_text=True)
        pages.append(response.get_json())
        next_ = next_url(response)
        assert len(pages) <= 100, "the links never end"
    return pages


def walk(client: FlaskClient, url: str) -> list[list[str]]:
    """Follow rel="next" from url to the end: the ids of each page."""
    return [[d["id"] for d in page] for page in pages_of(client, url)]


def cursor(*items: Any, raw: str | None = None) -> str:
    """A cursor as the API writes them (base64url JSON, unpadded), of any content."""
    text = json.dumps(list(items)) if raw is None else raw
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("bell-", ["Bell-G", "bell-a", "bell-b", "bell-c", "bell-d", "bell-e", "bell-f"]),  # id, any case
        ("BELL-g", ["Bell-G"]),
        ("alpha", ["Bell-G", "bell-a"]),  # name
        ("ZULU", ["ghost"]),  # the name of a device that never reported
        ("depot", ["ghost"]),  # site
        ("nort", ["bell-a", "bell-b"]),  # site "North", "North Yard", tag "north"
        ("crypt", ["bell-c"]),  # a tag only
        ("TOWER", ["bell-a", "bell-b", "bell-d"]),
        ("%", ["bell-f"]),  # "50% off": % is a percent sign, not a wildcard
        ("0%", ["bell-f"]),
        ("5_%", []),
        ("_", ["x_1"]),  # _ is an underscore, not any character
        ("x_1", ["x_1"]),
        ("\\", []),
        ('"', []),  # tags are searched as tags, not as the JSON they are stored in
        ('r","n', []),
        ("zzz", []),
    ],
)
def test_q_is_a_caseless_substring_of_id_name_site_or_a_tag(
    client: FlaskClient, fleet: dict[str, Any], q: str, expected: list[str]
) -> None:
    assert ids(client, f"q={quote(q, safe='')}") == expected


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("ok", ["Bell-G", "bell-a", "bell-f", "x-1", "x_1"]),
        ("critical", ["bell-b", "bell-d"]),  # bell-d: offline, with a critical alert: in both (§12)
        ("warning", ["bell-c"]),
        ("offline", ["bell-d"]),
        ("unknown", ["bell-e", "ghost"]),
        ("critical,warning", ["bell-b", "bell-c", "bell-d"]),
        ("unknown,offline,unknown", ["bell-d", "bell-e", "ghost"]),
        ("", BY_ID),
    ],
)
def test_health_is_a_comma_list(client: FlaskClient, fleet: dict[str, Any], wanted: str, expected: list[str]) -> None:
    assert ids(client, f"health={wanted}") == expected


@pytest.mark.parametrize("bad", ["fine", "OK", "ok,", ",ok", "ok,,critical", "ok;critical"])
def test_an_unknown_health_is_400_naming_health(client: FlaskClient, bad: str) -> None:
    assert error(client, f"health={quote(bad, safe='')}").startswith("health: ")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["tower"], ["bell-a", "bell-b", "bell-d"]),
        (["tower", "spare"], ["bell-d"]),  # repeated: all of them
        (["spare", "tower", "spare"], ["bell-d"]),
        (["spare"], ["bell-d", "ghost"]),
        (["tower", "crypt"], []),
        (["nothing"], []),
    ],
)
def test_tag_repeated_means_all_of_them(
    client: FlaskClient, fleet: dict[str, Any], tags: list[str], expected: list[str]
) -> None:
    assert ids(client, "&".join(f"tag={t}" for t in tags)) == expected


@pytest.mark.parametrize("bad", ["tag=Tower", "tag=", "tag=a%20b", "&".join(f"tag=t{i}" for i in range(17))])
def test_a_bad_tag_is_400_naming_tag(client: FlaskClient, bad: str) -> None:
    assert error(client, bad).startswith("tag: ")


@pytest.mark.parametrize(
    ("site", "expected"),
    [("North", ["bell-a"]), ("North%20Yard", ["bell-b"]), ("north", []), ("Nort", []), ("Depot", ["ghost"])],
)
def test_site_is_exact(client: FlaskClient, fleet: dict[str, Any], site: str, expected: list[str]) -> None:
    assert ids(client, f"site={site}") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=bell&health=ok,critical", ["Bell-G", "bell-a", "bell-b", "bell-d", "bell-f"]),
        ("q=nort&tag=tower&sort=name", ["bell-a", "bell-b"]),
        ("tag=tower&health=offline,critical&sort=severity", ["bell-b", "bell-d"]),
        ("site=North&q=beta", []),
        ("tag=spare&health=unknown&q=zu", ["ghost"]),
        ("q=a&sort=-last_seen&health=ok", ["x-1", "Bell-G", "bell-a"]),  # x-1: "BETA"
    ],
)
def test_filters_combine_as_and(client: FlaskClient, fleet: dict[str, Any], query: str, expected: list[str]) -> None:
    assert ids(client, query) == expected
    assert [i for page in walk(client, f"/api/devices?{query}&limit=1") for i in page] == expected


# --- sorts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ORDERS)
def test_each_sort_orders_the_whole_fleet(client: FlaskClient, fleet: dict[str, Any], sort: str) -> None:
    assert ids(client, f"sort={sort}") == ORDERS[sort]


def test_the_sorts_read_what_the_api_shows(client: FlaskClient, fleet: dict[str, Any]) -> None:
    """The expected orders above agree with the devices' own fields (so a wrong fixture cannot hide a bug)."""
    devices = [fleet[i] for i in BY_ID]
    worst = {"bell-d": 1}  # the offline device's critical alert: it stands with the critical ones (§12)
    ranks = {d["id"]: worst.get(d["id"], RANKS.get(d["health"])) for d in devices}
    places = {d["id"]: HEALTH_ORDER.index(standing(d["liveness"], ranks[d["id"]])) for d in devices}
    by_health = sorted(devices, key=lambda d: (places[d["id"]], d["id"]))
    by_name = sorted(devices, key=lambda d: (d["name"] is None, (d["name"] or "").lower(), d["id"]))
    by_seen = sorted(devices, key=lambda d: (d["last_seen"] or "", d["id"]))
    assert [d["id"] for d in by_health] == BY_SEVERITY
    assert [d["id"] for d in by_name] == BY_NAME
    assert [d["id"] for d in by_seen] == BY_LAST_SEEN
    assert fleet["ghost"]["first_seen"] is None and fleet["bell-e"]["first_seen"] is not None


def test_an_unknown_sort_is_400_naming_sort(client: FlaskClient) -> None:
    assert error(client, "sort=health").startswith("sort: ")
    assert error(client, "sort=-id").startswith("sort: ")


# --- limit, count, links ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["0", "1001", "abc", "-1", "1.5", "", "%EF%BC%95", "1e3"])
def test_limit_out_of_bounds_is_400_naming_limit(client: FlaskClient, bad: str) -> None:
    assert error(client, f"limit={bad}").startswith("limit: ")


def test_limit_bounds_themselves_are_accepted(client: FlaskClient, fleet: dict[str, Any]) -> None:
    assert ids(client, "limit=1") == ["Bell-G"]
    assert ids(client, "limit=1000") == BY_ID


def test_a_cursor_needs_a_limit(client: FlaskClient, fleet: dict[str, Any]) -> None:
    url = next_url(client.get("/api/devices?limit=2"))
    assert url is not None
    assert error(client, url.split("?", 1)[1].replace("limit=2&", "")).startswith("cursor: ")


def test_a_cursor_of_another_sort_or_tampered_is_400(client: FlaskClient, fleet: dict[str, Any]) -> None:
    given = next_url(client.get("/api/devices?limit=2&sort=name"))
    assert given is not None
    name_cursor = given.rsplit("cursor=", 1)[1]
    assert ids(client, f"limit=2&sort=name&cursor={name_cursor}") == BY_NAME[2:4]
    for sort in ("id", "severity", "last_seen", "-last_seen"):
        assert error(client, f"limit=2&sort={sort}&cursor={name_cursor}").startswith("cursor: ")
    bad = [
        "garbage!", "%00%ff", name_cursor[:-3], cursor("id"), cursor("id", "bell-a", "x"), cursor("name", 0, "x"),
        cursor(raw='{"id": "bell-a"}'), cursor(raw="[" * 100_000), cursor("id", 10**30), cursor("id", True),
        cursor("id", None), cursor("id", ["bell-a"]), cursor(raw='["id", NaN]'), cursor(raw='["id", "\\ud800"]'),
        cursor("ID", "bell-a"),
    ]  # fmt: skip
    for value in bad:
        assert error(client, f"limit=2&cursor={value}").startswith("cursor: "), value
    assert ids(client, f"limit=2&cursor={cursor('id', 'bell-e')}") == ["bell-f", "ghost"]  # one the API could give


@pytest.mark.parametrize("sort", ORDERS)
@pytest.mark.parametrize("limit", [1, 3, 9, 10, 11])
def test_following_next_gives_each_device_once(
    client: FlaskClient, fleet: dict[str, Any], sort: str, limit: int
) -> None:
    pages = walk(client, f"/api/devices?sort={sort}&limit={limit}")
    assert [i for page in pages for i in page] == ORDERS[sort]
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1) and 1 <= len(pages[-1]) <= limit


def test_total_count_and_link_on_each_page(client: FlaskClient, fleet: dict[str, Any]) -> None:
    response = client.get("/api/devices?limit=4&health=ok,unknown&sort=severity&q=o")
    assert response.headers["X-Total-Count"] == "4" and "Link" not in response.headers  # exactly a page: no next
    url: str | None = "/api/devices?limit=3&health=ok,unknown&sort=severity&q=o"
    shown = []
    while url is not None:
        response = client.get(url)
        assert response.headers["X-Total-Count"] == "4"  # the number matching, on every page
        shown += [d["id"] for d in response.get_json()]
        url = next_url(response)
        if url is not None:
            assert url.startswith("/api/devices?") and "health=ok%2Cunknown" in url and "q=o" in url
    assert shown == ["ghost", "Bell-G", "bell-a", "bell-f"]  # o: id, name, site or tag
    empty = client.get("/api/devices?limit=5&q=nothing")
    assert empty.get_json() == [] and empty.headers["X-Total-Count"] == "0" and "Link" not in empty.headers


def test_without_limit_the_whole_fleet_is_one_json_array(client: FlaskClient, fleet: dict[str, Any]) -> None:
    response = client.get("/api/devices")
    assert response.mimetype == "application/json" and "Link" not in response.headers
    assert response.headers["X-Total-Count"] == "10"
    body = json.loads(response.get_data(as_text=True))
    assert isinstance(body, list) and [d["id"] for d in body] == BY_ID
    assert body == [fleet[i] for i in BY_ID]
    assert [d for page in pages_of(client, "/api/devices?limit=4") for d in page] == body  # pages show the same


def test_csv_respects_filters_sort_and_limit(client: FlaskClient, fleet: dict[str, Any]) -> None:
    def rows(query: str) -> list[list[str]]:
        response = client.get(f"/api/devices?format=csv&{query}")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        return list(csv.reader(io.StringIO(response.get_data(as_text=True))))

    header, *body = rows("tag=tower&sort=severity")
    assert header[:3] == ["id", "name", "site"] and [r[0] for r in body] == ["bell-b", "bell-d", "bell-a"]
    assert [r[header.index("health")] for r in body] == ["critical", "offline", "ok"]
    assert [r[0] for r in rows("q=bell&limit=2")[1:]] == ["Bell-G", "bell-a"]
    assert rows("q=nothing") == [header]


# --- the health order's SQL -------------------------------------------------------------------


@pytest.mark.parametrize("liveness", ["online", "offline", "unknown"])
@pytest.mark.parametrize("worst", [None, *range(len(ALERT_STATES_BY_RANK))])
def test_health_sql_agrees_with_health(tmp_path: Path, liveness: str, worst: int | None) -> None:
    conn = store.connect(tmp_path / "h.db")
    try:
        sql = f"SELECT {health_sql('l', 'w')} FROM (SELECT ? AS l, ? AS w)"
        (place,) = conn.execute(sql, (liveness, worst)).fetchone()
    finally:
        conn.close()
    assert HEALTH_ORDER[place] == health(liveness, worst)


@pytest.mark.parametrize("liveness", ["online", "offline", "unknown"])
@pytest.mark.parametrize("worst", [None, *range(len(ALERT_STATES_BY_RANK))])
def test_standing_sql_agrees_with_standing(tmp_path: Path, liveness: str, worst: int | None) -> None:
    """sort=severity's place (§12): the worst alert's, offline or not; else the health."""
    conn = store.connect(tmp_path / "s.db")
    try:
        sql = f"SELECT {standing_sql('l', 'w')} FROM (SELECT ? AS l, ? AS w)"
        (place,) = conn.execute(sql, (liveness, worst)).fetchone()
    finally:
        conn.close()
    assert HEALTH_ORDER[place] == standing(liveness, worst)
    assert standing(liveness, worst) == (health(liveness, worst) if worst is None else health("online", worst))
