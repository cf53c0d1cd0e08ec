"""The alert lifecycle (§9) through Flask's test client on a real SQLite file, the ingest driven in-process beside it.

An acknowledgement is carried out by the ingest's sweep while the request waits (web.command_wait_s):
`ack` runs that sweep in a thread, as the ingest's loop would; one test sets the wait to 0 and sees
the 202 instead. Silences are the web's own: their times are the real clock's, as the web reads it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from shared.events import iso
from shared.silences import Silence
from tests import conftest, test_registry_api
from tests.conftest import write_config
from tests.support import FakeClock
from tests.test_ingest_inprocess import TIMEOUT, heartbeat, message
from tests.test_registry_api import HOSTILE, get, patch
from tests.test_security import BEARER, BUTTON, TOKEN_LINE, USER_LINE, sign_in
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod
from vesper_web import create_app

client = test_registry_api.client  # the registry suite's fixtures: the app's client, an in-process ingest
ingest = test_registry_api.ingest

ALERT_FIELDS = {"subsystem", "state", "message", "updated_at"}
LIFECYCLE_FIELDS = ALERT_FIELDS | {"acknowledged", "flapping", "confirmed", "unconfirmed_since", "silenced_until"}
_mids = iter(range(100, 10**9))


def alert(ingest: Ingest, state: str, device_id: str = "bell-1", subsystem: str = "Audio", msg: str = "x") -> None:
    """One alert message from a device, applied as its own batch."""
    body = json.dumps({"subsystem": subsystem, "state": state, "msg": msg}).encode()
    ingest.process([message(ingest, device_id, "alerts", body, mid=next(_mids))])


def ack(
    client: FlaskClient,
    ingest: Ingest,
    url: str = "/api/devices/bell-1/alerts/Audio/ack",
    body: Any = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    before_sweep: Callable[[], None] | None = None,
) -> Any:
    """POST an acknowledgement while the ingest's sweep carries it out in a thread; the JSON answer, status checked."""
    answered = threading.Event()

    def sweeper() -> None:
        while not answered.is_set():
            if store.pending_commands(ingest.conn):
                if before_sweep is not None:
                    before_sweep()
                ingest.sweep(ingest.clock())
                return
            answered.wait(0.01)

    thread = threading.Thread(target=sweeper, daemon=True)
    thread.start()
    try:
        data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        response = client.post(url, data=data, content_type="application/json", headers=headers or {})
    finally:
        answered.set()
        thread.join(10)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def alert_object(client: FlaskClient, device_id: str = "bell-1", subsystem: str = "Audio") -> dict[str, Any]:
    """The alert's object in GET /api/devices/{id}."""
    found = [a for a in get(client, f"/api/devices/{device_id}")["alerts"] if a["subsystem"] == subsystem]
    assert len(found) == 1, found
    return found[0]


def events_of(client: FlaskClient, kind: str) -> list[dict[str, Any]]:
    """The stored events of one type, oldest first."""
    return [e for e in get(client, "/api/events")["events"] if e["type"] == kind]


def post_silence(client: FlaskClient, body: Any, status: int = 201, headers: dict[str, str] | None = None) -> Any:
    """POST /api/silences (any JSON, or raw text); the JSON answer, its status checked."""
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/api/silences", data=data, content_type="application/json", headers=headers or {})
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def at(seconds_from_now: float) -> str:
    """An ISO-8601 UTC time that far from the real now (the web's clock)."""
    return iso(time.time() + seconds_from_now) or ""


# --- acknowledge --------------------------------------------------------------------------------


def test_ack_is_200_with_who_when_and_the_note(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    answer = ack(client, ingest, body={"note": "on my way, key at the office"})
    assert set(answer) == LIFECYCLE_FIELDS and (answer["subsystem"], answer["state"]) == ("Audio", "CRITICAL")
    assert answer["acknowledged"] == {"by": "local", "at": iso(ingest.clock()), "note": "on my way, key at the office"}
    assert alert_object(client) == answer
    [event] = events_of(client, "alert_acknowledged")
    assert (event["severity"], event["source_id"], event["ts"]) == ("info", "bell-1", iso(ingest.clock()))
    assert event["payload"] == {"subsystem": "Audio", "by": "local", "note": "on my way, key at the office"}
    assert [e["type"] for e in get(client, "/api/events")["events"]] == ["alert", "alert_acknowledged"]


def test_ack_without_a_body_or_note_and_a_hostile_note(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "WARNING", subsystem="Net")
    alert(ingest, "WARNING", subsystem="Disk")
    alert(ingest, "WARNING", subsystem="Motor")
    assert ack(client, ingest, "/api/devices/bell-1/alerts/Net/ack")["acknowledged"]["note"] is None
    assert ack(client, ingest, "/api/devices/bell-1/alerts/Disk/ack", {"note": ""})["acknowledged"]["note"] is None
    note = (HOSTILE * 20)[:500]  # markup, bidi override, line separator: kept as text, at the limit
    assert ack(client, ingest, "/api/devices/bell-1/alerts/Motor/ack", {"note": note})["acknowledged"]["note"] == note
    assert events_of(client, "alert_acknowledged")[-1]["payload"]["note"] == note


def test_a_subsystem_holding_a_slash_or_dots_is_acknowledged_through_2f(client: FlaskClient, ingest: Ingest) -> None:
    """The console sends a "/" as %2F (§12), a ".." inside a name too; the store finds the alert by its whole name."""
    alert(ingest, "WARNING", subsystem="Power/../Main")
    alert(ingest, "WARNING", subsystem="Power")
    answer = ack(client, ingest, "/api/devices/bell-1/alerts/Power%2F..%2FMain/ack")
    assert (answer["subsystem"], answer["acknowledged"]["by"]) == ("Power/../Main", "local")
    assert events_of(client, "alert_acknowledged")[-1]["payload"]["subsystem"] == "Power/../Main"
    assert alert_object(client, subsystem="Power")["acknowledged"] is None


def test_the_alerts_endpoint_keeps_its_four_fields(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    alert(ingest, "WARNING", subsystem="Net")
    ack(client, ingest)
    post_silence(client, {"device": "bell-1", "duration_s": 600})
    answer = get(client, "/api/devices/bell-1/alerts")
    assert [a["subsystem"] for a in answer] == ["Audio", "Net"]
    assert all(set(a) == ALERT_FIELDS for a in answer)
    assert all(set(a) == LIFECYCLE_FIELDS for a in get(client, "/api/devices/bell-1")["alerts"])


def test_a_repeat_keeps_the_ack_and_a_new_state_clears_it(client: FlaskClient, ingest: Ingest, clock: FakeClock):
    alert(ingest, "CRITICAL")
    acknowledged = ack(client, ingest, body={"note": "seen"})["acknowledged"]
    clock.advance(5)
    alert(ingest, "CRITICAL")  # QoS 1 redelivery: the same state and message
    assert alert_object(client)["acknowledged"] == acknowledged
    alert(ingest, "CRITICAL", msg="hotter")  # a new message, the same state: still the one acknowledged
    assert alert_object(client)["acknowledged"] == acknowledged
    alert(ingest, "FAILED", msg="hotter")
    assert alert_object(client)["acknowledged"] is None
    ack(client, ingest)
    alert(ingest, "CLEARED")
    alert(ingest, "FAILED", msg="hotter")  # the same state as acknowledged, but a new alert
    assert alert_object(client)["acknowledged"] is None


@pytest.mark.web(command_wait_s=0)
def test_without_waiting_the_ack_is_202_queued_then_the_sweep_carries_it_out(
    client: FlaskClient, ingest: Ingest
) -> None:
    alert(ingest, "CRITICAL")
    response = client.post("/api/devices/bell-1/alerts/Audio/ack", json={"note": "later"})
    assert response.status_code == 202 and response.get_json() == {"status": "queued"}
    assert alert_object(client)["acknowledged"] is None and events_of(client, "alert_acknowledged") == []
    ingest.sweep(ingest.clock())
    assert alert_object(client)["acknowledged"] == {"by": "local", "at": iso(ingest.clock()), "note": "later"}
    assert len(events_of(client, "alert_acknowledged")) == 1


def test_an_alert_that_clears_before_the_sweep_is_404_and_no_event(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    error = ack(client, ingest, status=404, before_sweep=lambda: alert(ingest, "CLEARED"))["error"]
    assert "ended before it was acknowledged" in error
    assert events_of(client, "alert_acknowledged") == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/devices/bell-1/alerts/Motor/ack",  # no such active alert
        "/api/devices/bell-1/alerts/audio/ack",  # names are exact
        "/api/devices/bell-9/alerts/Audio/ack",  # no such device
        "/api/devices/ghost/alerts/Audio/ack",  # registered, never heard from
    ],
)
def test_ack_of_no_such_alert_is_404(client: FlaskClient, ingest: Ingest, url: str) -> None:
    alert(ingest, "CRITICAL")
    patch(client, "ghost", {"name": "registered only"})
    assert "has no active alert" in ack(client, ingest, url, status=404)["error"]
    assert store.pending_commands(ingest.conn) == [] and events_of(client, "alert_acknowledged") == []


def test_ack_of_a_bad_device_id_is_400(client: FlaskClient, ingest: Ingest) -> None:
    assert "invalid device id" in ack(client, ingest, "/api/devices/bell%20one/alerts/Audio/ack", status=400)["error"]


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("note", {"note": "n" * 501}),
        ("note", {"note": "two\nlines"}),
        ("note", {"note": "esc \x1b[31m red"}),
        ("note", {"note": "c1 \u0085"}),
        ("note", '{"note": "lone \\ud800"}'),
        ("note", {"note": 5}),
        ("note", {"note": ["seen"]}),
        ("note", {"note": True}),
        ("by", {"note": "x", "by": "someone else"}),
        ("body", "not json"),
        ("body", "{"),
        ("body", "[]"),
        ("body", '"seen"'),
        ("body", "[" * 10_000),
    ],
    ids=lambda b: str(b)[:30],
)
def test_a_bad_note_is_400_naming_the_field(client: FlaskClient, ingest: Ingest, field: str, body: Any) -> None:
    alert(ingest, "CRITICAL")
    error = ack(client, ingest, body=body, status=400)["error"]
    assert error.startswith(f"{field}: ") and len(error) > len(field) + 4
    assert alert_object(client)["acknowledged"] is None and store.pending_commands(ingest.conn) == []


def test_the_note_at_its_limit_is_accepted(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    assert ack(client, ingest, body={"note": "n" * 500})["acknowledged"]["note"] == "n" * 500


# --- who acknowledged, with sign-in configured ---------------------------------------------------


@pytest.fixture
def secured(db_path: Path, tmp_path: Path, ingest: Ingest) -> Flask:
    """The web with an operator and a token configured, on the in-process ingest's database."""
    auth = {"users": [USER_LINE], "tokens": [TOKEN_LINE], "login_backoff_s": 0.2}
    database = {k: v for k, v in vars(conftest.database(db_path, tmp_path)).items() if v}
    return create_app(config_mod.from_dict({"database": database, "auth": auth}))


def test_the_ack_names_the_user_or_the_token(secured: Flask, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    alert(ingest, "WARNING", subsystem="Net")
    browser, script = secured.test_client(), secured.test_client()
    assert "error" in ack(script, ingest, status=401)  # nobody: refused before anything is queued
    assert store.pending_commands(ingest.conn) == []
    assert sign_in(browser).status_code == 303
    by_user = ack(browser, ingest, body={"note": "mine"}, headers=BUTTON)["acknowledged"]
    assert (by_user["by"], by_user["note"]) == ("user alice", "mine")
    by_token = ack(script, ingest, "/api/devices/bell-1/alerts/Net/ack", headers=BEARER)["acknowledged"]
    assert by_token["by"] == "token deploy-bot"
    events = script.get("/api/events", headers=BEARER).get_json()["events"]
    acks = [e["payload"]["by"] for e in events if e["type"] == "alert_acknowledged"]
    assert acks == ["user alice", "token deploy-bot"]
    assert post_silence(script, {"duration_s": 60}, headers=BEARER)["created_by"] == "token deploy-bot"
    assert post_silence(browser, {"duration_s": 60}, headers=BUTTON)["created_by"] == "user alice"


# --- silences -----------------------------------------------------------------------------------


def test_a_device_silence_is_201_listed_and_shown_on_its_alerts(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    alert(ingest, "CRITICAL", device_id="bell-2")
    before = time.time()
    created = post_silence(client, {"device": "bell-1", "duration_s": 3600, "comment": "bell rope replaced"})
    assert set(created) == {"id", "device", "tag", "subsystem", "starts_at", "ends_at", "comment", "created_by",
                            "created_at", "site", "device_count"}  # fmt: skip
    assert isinstance(created["id"], int) and created["device"] == "bell-1"
    assert (created["tag"], created["subsystem"], created["comment"]) == (None, None, "bell rope replaced")
    assert created["created_by"] == "local" and created["created_at"] == created["starts_at"]
    assert iso(before) <= created["starts_at"] <= iso(time.time())  # default: now
    length = datetime.fromisoformat(created["ends_at"]) - datetime.fromisoformat(created["starts_at"])
    assert abs(length.total_seconds() - 3600) < 0.002
    assert get(client, "/api/silences") == {"silences": [created]}
    assert alert_object(client)["silenced_until"] == created["ends_at"]
    assert alert_object(client, "bell-2")["silenced_until"] is None


def test_ends_at_and_a_future_start(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    starts, ends = at(3600), at(7200)
    future = post_silence(client, {"device": "bell-1", "starts_at": starts, "ends_at": ends})
    assert (future["starts_at"], future["ends_at"]) == (starts, ends)
    assert alert_object(client)["silenced_until"] is None  # not begun: listed, silences nothing yet
    in_a_month = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0) + timedelta(days=30)
    offset = post_silence(client, {"subsystem": "Audio", "ends_at": in_a_month.isoformat()})
    assert offset["ends_at"] == iso(in_a_month.timestamp())  # any zone, shown in UTC
    assert in_a_month.isoformat().endswith("+02:00") and offset["ends_at"].endswith(".000Z")
    assert alert_object(client)["silenced_until"] == offset["ends_at"]
    assert [s["id"] for s in get(client, "/api/silences")["silences"]] == [future["id"], offset["id"]]  # soonest end


def test_each_matcher_silences_what_it_names(client: FlaskClient, ingest: Ingest) -> None:
    for device_id in ("bell-1", "bell-2", "bell-3"):
        alert(ingest, "CRITICAL", device_id=device_id)
        alert(ingest, "WARNING", device_id=device_id, subsystem="Net")
    patch(client, "bell-2", {"tags": ["north", "tower"]})

    def silenced() -> set[tuple[str, str]]:
        return {(d, a["subsystem"]) for d in ("bell-1", "bell-2", "bell-3")
                for a in get(client, f"/api/devices/{d}")["alerts"] if a["silenced_until"]}  # fmt: skip

    by_device = post_silence(client, {"device": "bell-1", "duration_s": 60})
    assert silenced() == {("bell-1", "Audio"), ("bell-1", "Net")}
    client.delete(f"/api/silences/{by_device['id']}")
    by_tag = post_silence(client, {"tag": "tower", "duration_s": 60})
    assert by_tag["tag"] == "tower" and silenced() == {("bell-2", "Audio"), ("bell-2", "Net")}
    patch(client, "bell-3", {"tags": ["tower"]})  # the registry read now: a tag added later is covered
    assert silenced() == {("bell-2", "Audio"), ("bell-2", "Net"), ("bell-3", "Audio"), ("bell-3", "Net")}
    client.delete(f"/api/silences/{by_tag['id']}")
    post_silence(client, {"subsystem": "Net", "duration_s": 60})
    assert silenced() == {("bell-1", "Net"), ("bell-2", "Net"), ("bell-3", "Net")}
    post_silence(client, {"device": "bell-1", "subsystem": "Audio", "duration_s": 60})  # every matcher must match
    assert silenced() == {("bell-1", "Net"), ("bell-2", "Net"), ("bell-3", "Net"), ("bell-1", "Audio")}
    fleet = post_silence(client, {"duration_s": 120})
    assert (fleet["device"], fleet["tag"], fleet["subsystem"]) == (None, None, None)
    assert len(silenced()) == 6
    assert alert_object(client, "bell-3")["silenced_until"] == fleet["ends_at"]  # the latest end of those covering


def test_delete_ends_it_204_then_404(client: FlaskClient, ingest: Ingest) -> None:
    alert(ingest, "CRITICAL")
    created = post_silence(client, {"device": "bell-1", "duration_s": 600})
    kept = post_silence(client, {"device": "bell-2", "duration_s": 600})
    response = client.delete(f"/api/silences/{created['id']}")
    assert response.status_code == 204 and response.get_data() == b""
    assert alert_object(client)["silenced_until"] is None
    assert get(client, "/api/silences") == {"silences": [kept]}
    for silence_id in (created["id"], 999_999):
        response = client.delete(f"/api/silences/{silence_id}")
        assert response.status_code == 404 and str(silence_id) in response.get_json()["error"]
    assert client.delete("/api/silences/x").status_code == 404
    assert client.delete("/api/silences/99999999999999999999").status_code == 404


def test_the_list_leaves_out_what_has_ended(client: FlaskClient, db_path: Path) -> None:
    conn = store.connect(db_path)
    with store.write(conn):  # one that ended a minute ago, as time would have ended it
        store.add_silence(conn, Silence(0, "bell-1", None, None, time.time() - 120, time.time() - 60))
    conn.close()
    assert get(client, "/api/silences") == {"silences": []}
    live = post_silence(client, {"device": "bell-1", "duration_s": 60})
    assert get(client, "/api/silences") == {"silences": [live]}


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("device", {"device": "bell one", "duration_s": 60}),
        ("device", {"device": "x" * 65, "duration_s": 60}),
        ("device", {"device": "", "duration_s": 60}),
        ("device", {"device": 7, "duration_s": 60}),
        ("tag", {"tag": "North", "duration_s": 60}),
        ("tag", {"tag": "-north", "duration_s": 60}),
        ("tag", {"tag": ["north"], "duration_s": 60}),
        ("subsystem", {"subsystem": "", "duration_s": 60}),
        ("subsystem", {"subsystem": "s" * 65, "duration_s": 60}),
        ("subsystem", {"subsystem": "a\nb", "duration_s": 60}),
        ("ends_at", {"starts_at": "2999-01-02T00:00:00Z", "ends_at": "2999-01-01T00:00:00Z"}),
        ("ends_at", {"ends_at": "2000-01-01T00:00:00Z"}),
        ("ends_at", {"ends_at": "2999-01-01T00:00:00Z"}),  # over 366 days
        ("ends_at", {"ends_at": "2999-01-01T00:00:00Z", "duration_s": 60}),
        ("ends_at", {"device": "bell-1"}),
        ("duration_s", {"starts_at": "2000-01-01T00:00:00Z", "duration_s": 60}),  # over before now
        ("duration_s", {"duration_s": 400 * 86400}),
        ("duration_s", {"duration_s": 0}),
        ("duration_s", {"duration_s": -60}),
        ("duration_s", {"duration_s": "60"}),
        ("duration_s", {"duration_s": True}),
        ("duration_s", '{"duration_s": NaN}'),
        ("duration_s", '{"duration_s": 1e400}'),
        ("ends_at", {"ends_at": "2999-01-01T00:00:00"}),
        ("starts_at", {"starts_at": "2999-01-01T00:00:00", "duration_s": 60}),
        ("ends_at", {"ends_at": "next tuesday"}),
        ("ends_at", {"ends_at": 32503680000}),
        ("starts_at", {"starts_at": "", "duration_s": 60}),
        ("until", {"until": "2999-01-01T00:00:00Z", "duration_s": 60}),
        ("comment", {"duration_s": 60, "comment": "\x1b]8;;http://evil\x07click\x1b]8;;\x07"}),
        ("comment", {"duration_s": 60, "comment": "c" * 501}),
        ("comment", {"duration_s": 60, "comment": {"text": "x"}}),
        ("body", "not json"),
        ("body", ""),
        ("body", "[]"),
        ("body", "[" * 10_000),
    ],
    ids=lambda b: str(b)[:40],
)
def test_a_bad_silence_is_400_naming_the_field(client: FlaskClient, field: str, body: Any) -> None:
    error = post_silence(client, body, 400)["error"]
    assert error.startswith(f"{field}: ") and len(error) > len(field) + 4
    assert get(client, "/api/silences") == {"silences": []}


def test_a_hostile_comment_round_trips_as_text(client: FlaskClient) -> None:
    created = post_silence(client, {"duration_s": 60, "comment": HOSTILE})
    raw = client.get("/api/silences").get_data(as_text=True)
    assert json.loads(raw)["silences"][0]["comment"] == HOSTILE == created["comment"]
    assert "\u2028" not in raw and "\\u2028" in raw  # escaped: a line separator cannot break a script


# --- unconfirmed while offline ------------------------------------------------------------------


def test_an_offline_devices_alerts_are_unconfirmed_until_it_returns(
    client: FlaskClient, ingest: Ingest, clock: FakeClock
) -> None:
    ingest.process([heartbeat(ingest)])
    alert(ingest, "CRITICAL")
    alert(ingest, "WARNING", device_id="bell-2")
    fresh = alert_object(client)
    assert (fresh["confirmed"], fresh["unconfirmed_since"]) == (True, None)
    clock.advance(TIMEOUT / 2)
    alert(ingest, "WARNING", device_id="bell-2")  # bell-2 keeps reporting
    ingest.process([heartbeat(ingest, "bell-2")])
    ingest.sweep(clock.advance(TIMEOUT / 2))
    device = get(client, "/api/devices/bell-1")
    assert device["liveness"] == "offline"
    assert (device["alerts"][0]["confirmed"], device["alerts"][0]["unconfirmed_since"]) == (False, device["last_seen"])
    assert alert_object(client, "bell-2")["confirmed"] is True
    assert set(get(client, "/api/devices/bell-1/alerts")[0]) == ALERT_FIELDS
    clock.advance(30)
    ingest.process([heartbeat(ingest)])
    back = alert_object(client)
    assert (back["confirmed"], back["unconfirmed_since"], back["state"]) == (True, None, "CRITICAL")


# --- flapping -----------------------------------------------------------------------------------

FLAP_WINDOW_S = 60.0


@pytest.fixture
def flappy(tmp_path: Path, db_path: Path, app: Flask, clock: FakeClock) -> Iterator[Ingest]:
    """An in-process ingest on the app's database that calls 4 changes within 60 s flapping."""
    toml = write_config(
        tmp_path / "flappy.toml", broker_mod.free_port(), db_path,
        liveness={"heartbeat_timeout_s": 3600.0}, alerts={"flap_transitions": 4, "flap_window_s": FLAP_WINDOW_S},
    )  # fmt: skip
    built = Ingest(config_mod.load(toml), clock=clock)
    built.connected()
    yield built
    built.conn.close()


def test_the_alert_object_shows_flapping_while_it_flaps(client: FlaskClient, flappy: Ingest, clock: FakeClock) -> None:
    for state in ["WARNING", "CLEARED", "WARNING"]:
        clock.advance(1)
        alert(flappy, state)
    assert alert_object(client)["flapping"] is False
    for state in ["CLEARED", "CRITICAL"]:  # the fourth change starts it; the table stays true
        clock.advance(1)
        alert(flappy, state)
    flapping = alert_object(client)
    assert (flapping["flapping"], flapping["state"]) == (True, "CRITICAL")
    assert set(get(client, "/api/devices/bell-1/alerts")[0]) == ALERT_FIELDS
    assert get(client, "/api/devices/bell-1")["health"] == "critical"
    assert ack(client, flappy)["flapping"] is True  # a flapping alert can be acknowledged
    flappy.sweep(clock.advance(FLAP_WINDOW_S - 1))
    assert alert_object(client)["flapping"] is True
    flappy.sweep(clock.advance(1))
    assert alert_object(client)["flapping"] is False
    assert [e["type"] for e in get(client, "/api/events")["events"]] == [
        "alert", "alert_cleared", "alert", "alert_flapping", "alert_acknowledged", "alert_flapping_ended"]  # fmt: skip
