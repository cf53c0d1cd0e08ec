"""The registry (§7) through Flask's test client on a real SQLite file, the ingest driven in-process beside it."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from tests.conftest import write_config
from tests.test_ingest_inprocess import CRITICAL, FakeClock, heartbeat, message, types
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

TIMEOUT = 10.0
CSV = "text/csv"
HOSTILE = '"</script><img src=x onerror=alert(1)>\\ \u2028 é 😀 \u202e'


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of conftest's app over an empty database."""
    return app.test_client()


@pytest.fixture
def clock() -> FakeClock:
    """The in-process ingest's clock."""
    return FakeClock()


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, app: Flask, clock: FakeClock) -> Iterator[Ingest]:
    """An Ingest on the app's database, connected (its grace starts at the clock's now), never on a broker."""
    toml = write_config(
        tmp_path / "vesper.toml", broker_mod.free_port(), db_path, liveness={"heartbeat_timeout_s": TIMEOUT}
    )
    built = Ingest(config_mod.load(toml), clock=clock)
    built.connected()
    yield built
    built.conn.close()


def patch(client: FlaskClient, device_id: str, body: Any, status: int = 200) -> Any:
    """PATCH a merge patch (any JSON, or raw text); the JSON answer, its status checked."""
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.patch(f"/api/devices/{device_id}", data=data, content_type="application/merge-patch+json")
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def get(client: FlaskClient, url: str, status: int = 200) -> Any:
    """GET a JSON answer, its status checked."""
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def delete(client: FlaskClient, ingest: Ingest, device_id: str, status: int = 204) -> None:
    """DELETE a device while the ingest's sweep carries its forget out in a thread, as the ingest's loop would."""
    answered = threading.Event()

    def sweeper() -> None:
        while not answered.is_set():
            if store.pending_commands(ingest.conn):
                ingest.sweep(ingest.clock())
            answered.wait(0.01)

    thread = threading.Thread(target=sweeper, daemon=True)
    thread.start()
    try:
        response = client.delete(f"/api/devices/{device_id}")
    finally:
        answered.set()
        thread.join(10)
    assert response.status_code == status, response.get_data(as_text=True)


def import_csv(client: FlaskClient, text: str | bytes, status: int = 200, content_type: str = CSV) -> Any:
    """POST a CSV import; the JSON answer, its status checked."""
    response = client.post("/api/devices", data=text, content_type=content_type)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()


def registry_of(device: dict[str, Any]) -> dict[str, Any]:
    """The registry fields of a device object."""
    return {k: device[k] for k in ("name", "site", "tags", "notes", "heartbeat_timeout_s")}


EMPTY = {"name": None, "site": None, "tags": [], "notes": None, "heartbeat_timeout_s": None}


# --- PATCH ------------------------------------------------------------------------------------


def test_patch_registers_a_device_never_heard_from(client: FlaskClient) -> None:
    body = patch(client, "bell-9", {"name": "St Mary's, north tower", "tags": ["north", "tower"]})
    assert body["id"] == "bell-9" and body["alerts"] == []
    assert (body["health"], body["liveness"], body["first_seen"], body["last_seen"]) == (
        "unknown",
        "unknown",
        None,
        None,
    )
    assert body["active_alerts"] == 0 and body["playback"] == {"active": False, "melody_uid": None}
    assert registry_of(body) == {**EMPTY, "name": "St Mary's, north tower", "tags": ["north", "tower"]}
    (listed,) = get(client, "/api/devices")
    assert {k: v for k, v in body.items() if k != "alerts"} == listed
    assert get(client, "/api/devices/bell-9")["name"] == "St Mary's, north tower"
    assert "bell-9" in get(client, "/api/devices/bell-9/alerts", 404)["error"]  # [] would mean reported healthy
    assert client.post("/api/devices/bell-9/health-check").status_code == 404


def test_patch_is_a_merge_patch(client: FlaskClient) -> None:
    patch(client, "bell-1", {"name": "North", "site": "St Mary's", "tags": ["a", "b"], "heartbeat_timeout_s": 120})
    body = patch(client, "bell-1", {"site": None, "notes": "key at the office"})
    assert registry_of(body) == {"name": "North", "site": None, "tags": ["a", "b"], "notes": "key at the office",
                                 "heartbeat_timeout_s": 120.0}  # fmt: skip
    body = patch(client, "bell-1", {"tags": ["c"]})  # an array is replaced, not merged (RFC 7396)
    assert body["tags"] == ["c"] and body["name"] == "North"
    assert registry_of(patch(client, "bell-1", {})) == registry_of(body)
    body = patch(client, "bell-1", {"tags": None, "heartbeat_timeout_s": None, "name": ""})
    assert registry_of(body) == {**EMPTY, "notes": "key at the office"}


ACCEPTED = [
    {"name": "x" * 128},
    {"site": "s" * 128},
    {"notes": "n" * 2048},
    {"tags": [f"t{i}" for i in range(16)]},
    {"tags": ["a" * 32, "0", "a_b.c:d-e"]},
    {"heartbeat_timeout_s": 30 * 86400},
    {"heartbeat_timeout_s": 0.5},
    {"name": "Glocke · Nord 😀"},
]


@pytest.mark.parametrize("body", ACCEPTED, ids=lambda b: str(b)[:40])
def test_values_at_their_limits_are_accepted(client: FlaskClient, body: dict[str, Any]) -> None:
    answer = patch(client, "bell-1", body)
    ((field, value),) = body.items()
    assert answer[field] == value


REFUSED = [
    ("name", {"name": "x" * 129}),
    ("name", {"name": 5}),
    ("name", {"name": ["x"]}),
    ("name", {"name": "a\x00b"}),
    ("name", {"name": "two\nlines"}),
    ("name", {"name": "del\x7f"}),
    ("name", {"name": "c1\u0085"}),
    ("name", '{"name": "lone \\ud800 surrogate"}'),
    ("site", {"site": "s" * 129}),
    ("site", {"site": True}),
    ("site", {"site": "tab\there"}),
    ("notes", {"notes": "n" * 2049}),
    ("notes", {"notes": {"a": 1}}),
    ("tags", {"tags": "a"}),
    ("tags", {"tags": ["A"]}),
    ("tags", {"tags": ["-a"]}),
    ("tags", {"tags": ["a" * 33]}),
    ("tags", {"tags": ["a b"]}),
    ("tags", {"tags": [""]}),
    ("tags", {"tags": [1]}),
    ("tags", {"tags": ["a", "a"]}),
    ("tags", {"tags": [f"t{i}" for i in range(17)]}),
    ("heartbeat_timeout_s", {"heartbeat_timeout_s": 0}),
    ("heartbeat_timeout_s", {"heartbeat_timeout_s": -1}),
    ("heartbeat_timeout_s", {"heartbeat_timeout_s": "90"}),
    ("heartbeat_timeout_s", {"heartbeat_timeout_s": True}),
    ("heartbeat_timeout_s", {"heartbeat_timeout_s": 30 * 86400 + 0.001}),
    ("heartbeat_timeout_s", '{"heartbeat_timeout_s": NaN}'),
    ("heartbeat_timeout_s", '{"heartbeat_timeout_s": 1e400}'),
    ("heartbeat_timeout_s", '{"heartbeat_timeout_s": ' + "9" * 400 + "}"),
    ("colour", {"name": "ok", "colour": "red"}),
    ("id", {"id": "bell-2"}),
    ("body", []),
    ("body", "x"),
    ("body", None),
    ("body", "{"),
    ("body", "[" * 10_000),
]


@pytest.mark.parametrize(("field", "body"), REFUSED, ids=lambda b: str(b)[:40])
def test_a_bad_value_is_400_naming_the_field_and_changes_nothing(client: FlaskClient, field: str, body: Any) -> None:
    patch(client, "bell-1", {"name": "before"})
    error = patch(client, "bell-1", body, 400)["error"]
    assert error.startswith(f"{field}: ") and len(error) > len(field) + 4
    assert get(client, "/api/devices/bell-1")["name"] == "before"


@pytest.mark.parametrize("bad", ["%2B", "bell%20one", "x" * 65, "caf%C3%A9"])
def test_bad_ids_are_400(client: FlaskClient, bad: str) -> None:
    assert "invalid device id" in patch(client, bad, {"name": "x"}, 400)["error"]
    response = client.delete(f"/api/devices/{bad}")
    assert response.status_code == 400 and "invalid device id" in response.get_json()["error"]
    assert get(client, "/api/devices") == []


def test_hostile_strings_round_trip_as_json_text(client: FlaskClient, app: Flask) -> None:
    patch(client, "bell-1", {"name": HOSTILE, "site": HOSTILE[:128], "notes": HOSTILE * 10})
    raw = client.get("/api/devices").get_data(as_text=True)
    (device,) = json.loads(raw)  # valid JSON whatever the operator typed
    assert "\u2028" not in raw and "\\u2028" in raw  # escaped by json.dumps (ensure_ascii)
    assert (device["name"], device["notes"]) == (HOSTILE, HOSTILE * 10)
    conn = store.connect(app.config["VESPER"].database.target, readonly=True)
    try:
        assert json.loads(store.devices_json(conn)) == store.devices(conn)
    finally:
        conn.close()


def test_patch_bodies_keep_the_16_kib_limit(client: FlaskClient) -> None:
    response = client.patch(
        "/api/devices/bell-1", data=json.dumps({"notes": "n" * 17_000}), content_type="application/json"
    )
    assert response.status_code == 413


# --- with the ingest --------------------------------------------------------------------------


def test_a_registered_device_that_reports_keeps_its_fields(client: FlaskClient, ingest: Ingest) -> None:
    patch(client, "bell-1", {"name": "North", "heartbeat_timeout_s": 45})
    ingest.process([heartbeat(ingest), message(ingest, "bell-1", "alerts", CRITICAL, mid=2)])
    device = get(client, "/api/devices/bell-1")
    assert (device["health"], device["liveness"], device["name"]) == ("critical", "online", "North")
    assert device["first_seen"] is not None and len(get(client, "/api/devices/bell-1/alerts")) == 1
    assert json.loads(client.get("/api/devices").get_data()) == [{k: v for k, v in device.items() if k != "alerts"}]


def test_delete_then_the_sweep_forgets_it_and_it_never_goes_offline(
    client: FlaskClient, ingest: Ingest, clock: FakeClock, db_path: Path
) -> None:
    ingest.process(
        [heartbeat(ingest), message(ingest, "bell-1", "alerts", CRITICAL, mid=2), heartbeat(ingest, "bell-2")]
    )
    patch(client, "bell-1", {"name": "North"})
    delete(client, ingest, "bell-1")  # answered once the sweep forgot it: the GET that follows says 404
    assert get(client, "/api/devices/bell-1", 404) and get(client, "/api/devices/bell-1/alerts", 404)
    assert "bell-1" not in ingest.fleet.devices and not any(d == "bell-1" for d, _ in ingest.fleet.alerts)
    assert [d["id"] for d in get(client, "/api/devices")] == ["bell-2"]
    ingest.sweep(clock.advance(2 * TIMEOUT))
    assert [(e["type"], e["source_id"]) for e in get(client, "/api/events")["events"]] == [
        ("alert", "bell-1"), ("device_offline", "bell-2")]  # fmt: skip
    conn = store.connect(db_path, readonly=True)
    assert store.pending_commands(conn) == []
    conn.close()
    assert client.delete("/api/devices/bell-1").status_code == 404


@pytest.mark.web(command_wait_s=0)
def test_delete_answers_202_while_the_forget_is_only_queued(client: FlaskClient, ingest: Ingest) -> None:
    ingest.process([heartbeat(ingest)])
    response = client.delete("/api/devices/bell-1")
    assert (response.status_code, response.get_json()) == (202, {"status": "queued"})
    assert get(client, "/api/devices/bell-1")["id"] == "bell-1"  # still there until the ingest's sweep
    ingest.sweep(ingest.clock())
    assert get(client, "/api/devices/bell-1", 404)


def test_a_forgotten_device_that_publishes_again_is_new(
    client: FlaskClient, ingest: Ingest, clock: FakeClock, db_path: Path
) -> None:
    ingest.process([heartbeat(ingest)])
    ingest.sweep(clock.advance(TIMEOUT))
    assert types(db_path) == ["device_offline"]
    delete(client, ingest, "bell-1")
    returned_at = clock.advance(5)
    ingest.process([heartbeat(ingest)])
    device = get(client, "/api/devices/bell-1")
    assert device["liveness"] == "online" and device["first_seen"] == device["last_seen"]
    assert device["first_seen"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(returned_at)))
    assert types(db_path) == ["device_offline"]  # no device_online: a first appearance; the past event stayed
    assert get(client, "/api/devices/bell-1/alerts") == []


def test_delete_a_registered_only_device_needs_no_sweep(client: FlaskClient, db_path: Path) -> None:
    assert client.delete("/api/devices/ghost").status_code == 404
    patch(client, "ghost", {"site": "depot"})
    assert client.delete("/api/devices/ghost").status_code == 204
    assert get(client, "/api/devices") == [] and get(client, "/api/devices/ghost", 404)
    conn = store.connect(db_path, readonly=True)
    assert store.pending_commands(conn) == []  # the ingest never knew it: nothing to ask
    conn.close()


# --- CSV import and export --------------------------------------------------------------------


def test_import_reports_each_bad_line_and_applies_the_good_ones(client: FlaskClient) -> None:
    patch(client, "bell-2", {"name": "old", "notes": "kept"})
    text = (
        "id,name,site,tags,notes,heartbeat_timeout_s\r\n"
        "bell-1,North,St Mary's,north tower,,90\r\n"  # line 2
        "bell-2,New name,,a,,\r\n"  # 3: an update, every column replaced
        "bell 3,x,,,,\r\n"  # 4
        "bell-4,x,,BAD,,\r\n"  # 5
        '"bell-5","multi\nline",,,,\r\n'  # 6-7: a control character
        "bell-6,x,,,,0\r\n"  # 8
        "bell-7,x,,,\r\n"  # 9: a field short
        "\r\n"  # 10: blank, skipped
        "bell-1,again,,,,\r\n"  # 11: repeated id
        "bell-8,,,,,2.5\r\n"  # 12
        "bell-2,x,,,,abc\r\n"  # 13: a bad line changes nothing
    )
    answer = import_csv(client, text)
    assert answer == {
        "created": 2,
        "updated": 1,
        "rejected": [
            {"line": 4, "error": "id: 1-64 characters of A-Z a-z 0-9 _ . : -"},
            {"line": 5, "error": answer["rejected"][1]["error"]},
            {"line": 6, "error": "name: control characters (and lone surrogates) are not allowed"},
            {"line": 8, "error": answer["rejected"][3]["error"]},
            {"line": 9, "error": "line: 5 fields where the header has 6"},
            {"line": 11, "error": "id: already given on line 2"},
            {"line": 13, "error": "heartbeat_timeout_s: a number of seconds, or empty"},
        ],
    }
    assert answer["rejected"][1]["error"].startswith("tags: ")
    assert answer["rejected"][3]["error"].startswith("heartbeat_timeout_s: ")
    devices = {d["id"]: registry_of(d) for d in get(client, "/api/devices")}
    assert devices == {
        "bell-1": {
            **EMPTY,
            "name": "North",
            "site": "St Mary's",
            "tags": ["north", "tower"],
            "heartbeat_timeout_s": 90.0,
        },
        "bell-2": {**EMPTY, "name": "New name", "tags": ["a"]},
        "bell-8": {**EMPTY, "heartbeat_timeout_s": 2.5},
    }


def test_import_with_some_columns_replaces_only_those(client: FlaskClient) -> None:
    patch(client, "bell-1", {"name": "North", "tags": ["a"]})
    assert import_csv(client, "site,id\nDepot,bell-1\nYard,bell-2\n") == {"created": 1, "updated": 1, "rejected": []}
    assert registry_of(get(client, "/api/devices/bell-1")) == {**EMPTY, "name": "North", "tags": ["a"], "site": "Depot"}


@pytest.mark.parametrize(
    ("text", "status", "error"),
    [
        ("", 400, "header: "),
        ("name,site\nx,y\n", 400, "header: "),
        ("id,colour\nbell-1,red\n", 400, "header: unknown column 'colour'"),
        ("id,name,name\n", 400, "header: "),
        (b"id,name\nbell-1,\xff\n", 400, "body: "),
    ],
)
def test_import_refuses_a_bad_header_or_body(client: FlaskClient, text: str | bytes, status: int, error: str) -> None:
    assert import_csv(client, text, status)["error"].startswith(error)
    assert get(client, "/api/devices") == []


def test_import_needs_text_csv(client: FlaskClient) -> None:
    assert "text/csv" in import_csv(client, "id\nbell-1\n", 415, content_type="application/json")["error"]
    assert import_csv(client, "id\nbell-1\n", content_type="text/csv; charset=utf-8")["created"] == 1


def test_import_bodies_up_to_10_mib(client: FlaskClient) -> None:
    lines = [f"bell-{i},{'n' * 100}" for i in range(10_000)]
    assert import_csv(client, "id,name\n" + "\n".join(lines) + "\n")["created"] == 10_000  # ~1 MiB > 16 KiB
    too_big = "id,name\n" + "x" * (10 * 1024 * 1024)
    assert "limited" in import_csv(client, too_big, 413)["error"]
    assert len(get(client, "/api/devices")) == 10_000


def test_import_of_100000_lines(client: FlaskClient) -> None:
    """All of a fleet-sized file in one request (its time is bench/fleet_scale.py's, not a test's)."""
    text = "id,name,site,tags,notes,heartbeat_timeout_s\n" + "".join(
        f"bell-{i:06d},Bell {i},Site {i % 97},t{i % 7} fleet,,{30 + i % 60}\n" for i in range(100_000)
    )
    assert import_csv(client, text) == {"created": 100_000, "updated": 0, "rejected": []}
    assert import_csv(client, text)["updated"] == 100_000
    assert client.get("/api/summary").get_json()["devices"] == 100_000


def test_export_columns_and_formula_escaping(client: FlaskClient, ingest: Ingest) -> None:
    ingest.process([heartbeat(ingest), message(ingest, "bell-1", "alerts", CRITICAL, mid=2)])
    patch(client, "bell-1", {"name": "=HYPERLINK(\"http://x\")", "site": "+1", "notes": "@SUM(A1)", "tags": ["b", "a"],
                             "heartbeat_timeout_s": 90})  # fmt: skip
    patch(client, "bell-2", {"name": "-2", "site": "'=already quoted", "notes": 'plain, "quoted"'})
    response = client.get("/api/devices?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="vesper-devices.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["id", "name", "site", "tags", "notes", "heartbeat_timeout_s", "health", "liveness",
                       "last_seen", "active_alerts"]  # fmt: skip
    last_seen = get(client, "/api/devices/bell-1")["last_seen"]
    assert rows[1] == ["bell-1", "'=HYPERLINK(\"http://x\")", "'+1", "b a", "'@SUM(A1)", "90", "critical", "online",
                       last_seen, "1"]  # fmt: skip
    assert rows[2] == ["bell-2", "'-2", "''=already quoted", "", 'plain, "quoted"', "", "unknown", "unknown", "", "0"]
    before = {d["id"]: registry_of(d) for d in get(client, "/api/devices")}
    assert import_csv(client, response.get_data()) == {"created": 0, "updated": 2, "rejected": []}  # a round trip
    assert {d["id"]: registry_of(d) for d in get(client, "/api/devices")} == before


def test_unknown_format_is_400(client: FlaskClient) -> None:
    assert get(client, "/api/devices?format=xml", 400)["error"].startswith("format: ")


def test_store_devices_equals_devices_json_with_the_registry(client: FlaskClient, ingest: Ingest, app: Flask) -> None:
    ingest.process([heartbeat(ingest, "b-heard")])
    for device_id, body in [("a-only", {"name": HOSTILE}), ("b-heard", {"tags": ["x"]}), ("c-only", {"site": "s"})]:
        patch(client, device_id, body)
    reader = store.connect(app.config["VESPER"].database.target, readonly=True)
    try:
        assert json.loads(store.devices_json(reader)) == store.devices(reader)
        assert [d["id"] for d in store.devices(reader)] == ["a-only", "b-heard", "c-only"]
    finally:
        reader.close()
