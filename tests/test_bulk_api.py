"""Bulk actions (§12) through Flask's test client on a real database (both engines): tags, silences, limits, 400s."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import store
from shared.silences import Silence, silenced_until
from vesper_web import bulk_rules

NOW = time.time()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of conftest's app (its database made)."""
    return app.test_client()


def seed(db_path: Path | str, registered: dict[str, dict[str, Any]], seen: list[str] = ()) -> None:  # type: ignore[assignment]
    """Register devices (id -> site, tags) and make others known to the ingest without a registry entry."""
    conn = store.connect(db_path)
    try:
        with store.write(conn):
            rows = [(d, f.get("site"), f.get("tags", [])) for d, f in registered.items()]
            store.put_entries(conn, ["site", "tags"], rows, NOW)
            for device_id in seen:
                store.ensure_device(conn, device_id, NOW)
    finally:
        conn.close()


def post(client: FlaskClient, body: Any, status: int) -> Any:
    """POST /api/bulk; the JSON answer, its status checked."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    response = client.post("/api/bulk", data=data, content_type="application/json")
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def ids(client: FlaskClient, query: str) -> set[str]:
    """The ids GET /api/devices lists for a query string."""
    response = client.get(f"/api/devices?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return {d["id"] for d in response.get_json()}


def test_add_tag_counts_only_the_devices_it_changed(client: FlaskClient, db_path: Path) -> None:
    devices = {f"bell-{n}": {"tags": ["north"] + (["new"] if n < 3 else [])} for n in range(10)}
    seed(db_path, {**devices, "other": {"tags": ["south"]}})
    answer = post(client, {"filter": {"tag": "north"}, "action": "add_tag", "tag": "new"}, 200)
    assert (answer["matched"], answer["count"], answer["unchanged"], answer["full"]) == (10, 7, 3, 0)
    assert ids(client, "tag=new") == set(devices)
    summary = client.get("/api/summary").get_json()
    assert summary["tags"]["new"] == 10 and summary["tags"]["north"] == 10  # tag_counts kept in step
    assert client.get("/api/devices/bell-5").get_json()["tags"] == ["north", "new"]  # the registry's own list
    again = post(client, {"filter": {"tag": "north"}, "action": "add_tag", "tag": "new"}, 200)
    assert again["count"] == 0 and again["unchanged"] == 10


def test_remove_tag_counts_only_the_devices_that_had_it(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {f"bell-{n}": {"site": "North", "tags": ["old"] if n % 2 else []} for n in range(8)})
    answer = post(client, {"filter": {"site": "North"}, "action": "remove_tag", "tag": "old"}, 200)
    assert (answer["matched"], answer["count"], answer["unchanged"]) == (8, 4, 4)
    assert ids(client, "tag=old") == set()
    assert client.get("/api/summary").get_json()["tags"].get("old", 0) == 0


def test_a_seen_device_without_an_entry_gets_one_holding_the_tag(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {}, seen=["loose-1", "loose-2"])
    answer = post(client, {"filter": {"q": "loose"}, "action": "add_tag", "tag": "found"}, 200)
    assert answer["count"] == 2
    device = client.get("/api/devices/loose-1").get_json()
    assert device["tags"] == ["found"] and device["name"] is None


def test_a_device_at_the_most_tags_is_left_and_counted_full(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {"full": {"tags": [f"t{n}" for n in range(16)]}, "room": {"tags": ["t0"]}})
    answer = post(client, {"filter": {"tag": "t0"}, "action": "add_tag", "tag": "more"}, 200)
    assert (answer["count"], answer["full"]) == (1, 1)
    assert ids(client, "tag=more") == {"room"}


@pytest.mark.web(bulk_max=5)
def test_more_than_bulk_max_is_refused_and_nothing_changes(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {f"bell-{n}": {"tags": ["north"]} for n in range(6)})
    for action in ({"action": "add_tag", "tag": "x"}, {"action": "silence", "duration_s": 60}):
        error = post(client, {"filter": {"tag": "north"}, **action}, 400)["error"]
        assert error.startswith("filter: matches 6 devices") and "web.bulk_max (5)" in error
    assert ids(client, "tag=x") == set()
    assert client.get("/api/silences").get_json()["silences"] == []
    dry = post(client, {"filter": {"tag": "north"}, "action": "add_tag", "tag": "x", "dry_run": True}, 400)
    assert "matches 6" in dry["error"]
    fits = post(client, {"filter": {"tag": "north", "q": "bell-1"}, "action": "add_tag", "tag": "x", "dry_run": True},
                200)  # fmt: skip
    assert (fits["matched"], fits["count"], fits["dry_run"], fits["max"]) == (1, 0, True, 5)
    assert ids(client, "tag=x") == set()  # a dry run does nothing


@pytest.mark.web(bulk_max=1050)
def test_a_search_matching_more_than_bulk_max_is_refused_past_the_lists_count_cap(client: FlaskClient,
                                                                                  db_path: Path) -> None:
    seed(db_path, {f"bell-{n:04d}": {} for n in range(1100)})  # q's count stops at 1,000 (listing.COUNT_CAP)
    error = post(client, {"filter": {"q": "bell"}, "action": "add_tag", "tag": "x"}, 400)["error"]
    assert "web.bulk_max (1,050)" in error
    assert ids(client, "tag=x") == set()


def test_silence_a_site_makes_one_site_silence(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {"n-1": {"site": "North"}, "n-2": {"site": "North"}, "s-1": {"site": "South"}})
    answer = post(client, {"filter": {"site": "North"}, "action": "silence", "duration_s": 3600, "comment": "works"},
                  201)  # fmt: skip
    assert answer["count"] == 2
    listed = client.get("/api/silences").get_json()["silences"]
    assert len(listed) == 1 and listed[0] == answer["silence"]
    assert (listed[0]["site"], listed[0]["device_count"], listed[0]["tag"], listed[0]["device"]) == ("North", None,
                                                                                                       None, None)
    assert listed[0]["comment"] == "works" and listed[0]["created_by"] == "local"


def test_silence_of_one_tag_is_a_tag_silence_and_any_other_filter_a_list(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {"a": {"site": "North", "tags": ["roof"]}, "b": {"site": "North"}, "c": {"tags": ["roof"]}})
    by_tag = post(client, {"filter": {"tag": ["roof"]}, "action": "silence", "duration_s": 60}, 201)["silence"]
    assert (by_tag["tag"], by_tag["site"], by_tag["device_count"]) == ("roof", None, None)
    listed = post(client, {"filter": {"site": "North", "tag": "roof"}, "action": "silence", "duration_s": 60,
                           "subsystem": "Audio"}, 201)  # fmt: skip
    assert (listed["count"], listed["silence"]["device_count"], listed["silence"]["subsystem"]) == (1, 1, "Audio")
    conn = store.connect(db_path)
    try:
        kept = {s.id: s for s in store.silences(conn, time.time())}
    finally:
        conn.close()
    assert kept[listed["silence"]["id"]].device_ids == frozenset({"a"})
    nothing = post(client, {"filter": {"q": "no-such"}, "action": "silence", "duration_s": 60}, 200)
    assert nothing["count"] == 0 and len(client.get("/api/silences").get_json()["silences"]) == 2


def test_covers_reads_site_and_device_list() -> None:
    site = Silence(1, None, None, None, NOW - 1, NOW + 60, site="North")
    listed = Silence(2, None, None, "Audio", NOW - 1, NOW + 30, device_ids=frozenset({"a", "b"}))
    assert site.covers("x", "", set(), "North") and not site.covers("x", "", set(), "South")
    assert not site.covers("x", "", set())  # an unregistered device has no site
    assert listed.covers("a", "Audio", set()) and not listed.covers("c", "Audio", set())
    assert not listed.covers("a", "Power", set())
    assert silenced_until([site, listed], "a", "Audio", set(), NOW, "North") == NOW + 60
    assert silenced_until([site, listed], "b", "Audio", set(), NOW, None) == NOW + 30
    assert silenced_until([site, listed], "c", "Audio", set(), NOW, None) is None


BAD = [
    ("[]", "body: a JSON object"),
    ({"filter": {}}, "action: one of silence, health_check, add_tag, remove_tag"),
    ({"action": "reboot"}, "action: one of"),
    ({"action": "add_tag"}, "tag: the tag to add or remove"),
    ({"action": "add_tag", "tag": "Bad Tag"}, "tag: the tag to add or remove"),
    ({"action": "health_check", "tag": "x"}, "tag: unknown field for health_check"),
    ({"action": "silence"}, "ends_at: give ends_at or duration_s"),
    ({"action": "silence", "duration_s": "1h"}, "duration_s: a number of seconds"),
    ({"action": "silence", "duration_s": 60, "comment": 5}, "comment: a string"),
    ({"action": "silence", "duration_s": 60, "device": "x"}, "device: unknown field for silence"),
    ({"action": "add_tag", "tag": "x", "dry_run": "yes"}, "dry_run: true or false"),
    ({"action": "add_tag", "tag": "x", "filter": []}, "filter: an object"),
    ({"action": "add_tag", "tag": "x", "filter": {"sort": "id"}}, "filter.sort: unknown filter"),
    ({"action": "add_tag", "tag": "x", "filter": {"site": ["a"]}}, "filter.site: a string"),
    ({"action": "add_tag", "tag": "x", "filter": {"tag": [1]}}, "filter.tag: a string or a list of strings"),
    ({"action": "add_tag", "tag": "x", "filter": {"tag": "Bad Tag"}}, "filter.tag: at most"),
    ({"action": "add_tag", "tag": "x", "filter": {"health": "bad"}}, "filter.health: a comma list"),
    ({"action": "add_tag", "tag": "x", "filter": {"q": "a\u0000"}}, "filter.q: at most"),
]


@pytest.mark.parametrize(("body", "error"), BAD)
def test_bad_bodies_are_400_naming_the_field(client: FlaskClient, body: Any, error: str) -> None:
    assert post(client, body, 400)["error"].startswith(error)


def test_health_check_without_a_broker_is_503_and_health_lists_work(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, {"a": {}})
    assert "broker" in post(client, {"action": "health_check"}, 503)["error"]
    assert post(client, {"action": "health_check", "filter": {"health": ["unknown", "ok"]}, "dry_run": True},
                200)["matched"] == 1  # fmt: skip


def test_filter_keys_follow_the_device_query() -> None:
    assert {"q", "health", "tag", "site"} <= set(bulk_rules.FILTER_KEYS)
    assert not {"sort", "limit", "after", "cursor"} & set(bulk_rules.FILTER_KEYS)
