"""Notifications in the web (docs/notifications.md): the log API, the test message, the page and /metrics."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from shared import config as config_mod
from shared import store
from shared.notify_text import trial_message
from tests.conftest import database
from tests.test_security import BEARER, BUTTON, TOKEN_LINE, USER_LINE, sign_in
from vesper_web import create_app

T0 = 1_700_000_000.0
HOSTILE = "<img src=x onerror=alert(1)>"
CHANNELS = [{"name": "ops", "url": "json://127.0.0.1:9/x"}, {"name": "pager", "url": "json://127.0.0.1:9/y"}]
KEYS = ["id", "channel", "status", "attempts", "created_at", "sent_at", "last_error", "title", "body", "event_ids"]
KEYS += ["escalation"]


def make_app(db: Path, **auth: Any) -> Flask:
    """The web app over `db` with two channels, ops and pager; keyword arguments are [auth] keys."""
    where = database(db, Path(tempfile.gettempdir()))  # on PostgreSQL the session key is the database's
    raw: dict[str, Any] = {"database": {"path": where.path, "url": where.url}, "notify": {"channels": CHANNELS}}
    if auth:
        raw["auth"] = auth
    return create_app(config_mod.from_dict(raw))


@pytest.fixture
def app(db_path: Path) -> Flask:
    """No sign-in configured (loopback): the local operator."""
    return make_app(db_path)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def writer(db_path: Path, app: Flask) -> Iterator[store.Connection]:
    """A write connection to the app's database, as the ingest holds one."""
    conn = store.connect(db_path)
    yield conn
    conn.close()


def queue(conn: store.Connection, channel: str, title: str, at: float, ids: list[int] | None = None) -> int:
    with store.write(conn):
        return store.enqueue(conn, channel, title, f"body of {title}", "info", ids or [], at)


def attempt(conn: store.Connection, message_id: int, status: str, at: float, error: str | None = None) -> None:
    with store.write(conn):
        store.record_attempt(conn, message_id, status, at, at + 1, error)


def get_json(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def post_test(client: FlaskClient, body: Any = None, **kwargs: Any) -> Any:
    return client.post("/api/notify/test", json=body, **kwargs)


# --- GET /api/notifications ----------------------------------------------------------------------


def test_an_empty_log(client: FlaskClient) -> None:
    assert get_json(client, "/api/notifications") == {"notifications": []}


def test_the_log_is_newest_first_in_the_spec_shape(client: FlaskClient, writer: store.Connection) -> None:
    first = queue(writer, "ops", "Vesper: 2 devices offline", T0, [4, 7])
    second = queue(writer, "pager", "Vesper: 1 critical alert", T0 + 10, [9])
    third = queue(writer, "ops", "Vesper: 1 device back online", T0 + 20)
    attempt(writer, first, "sent", T0 + 1)
    attempt(writer, second, "failed", T0 + 11, "HTTP 500 from the webhook")
    got = get_json(client, "/api/notifications")["notifications"]
    assert [n["id"] for n in got] == [third, second, first]
    assert all(list(n) == KEYS for n in got)
    assert got[2] == {
        "id": first,
        "channel": "ops",
        "status": "sent",
        "attempts": 1,
        "created_at": "2023-11-14T22:13:20.000Z",
        "sent_at": "2023-11-14T22:13:21.000Z",
        "last_error": None,
        "title": "Vesper: 2 devices offline",
        "body": "body of Vesper: 2 devices offline",
        "event_ids": [4, 7],
        "escalation": False,
    }
    assert got[1]["status"] == "failed" and got[1]["last_error"] == "HTTP 500 from the webhook"
    assert got[1]["sent_at"] is None and got[1]["attempts"] == 1
    assert got[0]["status"] == "pending" and got[0]["attempts"] == 0 and got[0]["event_ids"] == []


def test_limit_defaults_to_50_and_is_bounded(client: FlaskClient, writer: store.Connection) -> None:
    for i in range(60):
        queue(writer, "ops", f"m{i}", T0 + i)
    assert len(get_json(client, "/api/notifications")["notifications"]) == 50
    assert [n["title"] for n in get_json(client, "/api/notifications?limit=2")["notifications"]] == ["m59", "m58"]
    assert len(get_json(client, "/api/notifications?limit=1000")["notifications"]) == 60


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5", "", "9" * 40, "%3Cimg%3E"])
def test_a_bad_limit_is_400_naming_it(client: FlaskClient, limit: str) -> None:
    assert "limit" in get_json(client, f"/api/notifications?limit={limit}", 400)["error"]


def test_hostile_strings_come_back_as_json_text(client: FlaskClient, writer: store.Connection) -> None:
    with store.write(writer):
        message_id = store.enqueue(writer, "ops", HOSTILE, f"{HOSTILE}\n</script>", "failure", [1], T0)
    attempt(writer, message_id, "failed", T0 + 1, f"error: {HOSTILE}")
    response = client.get("/api/notifications")
    assert response.mimetype == "application/json" and response.headers["X-Content-Type-Options"] == "nosniff"
    (got,) = response.get_json()["notifications"]
    assert (
        got["title"] == HOSTILE and got["body"] == f"{HOSTILE}\n</script>" and got["last_error"] == f"error: {HOSTILE}"
    )
    page = client.get("/notifications").get_data(as_text=True)
    assert "onerror" not in page  # the page holds no message text: its script reads the API and sets textContent


# --- POST /api/notify/test -----------------------------------------------------------------------


def test_a_test_message_is_queued_pending(client: FlaskClient, db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vesper_web.audit"):
        response = post_test(client, {"channel": "pager"})
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body == {"id": body["id"], "status": "pending"} and isinstance(body["id"], int)
    conn = store.connect(db_path, readonly=True)
    row = conn.execute(
        "SELECT channel, status, attempts, title, body, notify_type, event_ids FROM notifications"
    ).fetchall()
    conn.close()
    title, text, notify_type = trial_message("pager")
    assert row == [("pager", "pending", 0, title, text, notify_type, "[]")]
    (listed,) = get_json(client, "/api/notifications")["notifications"]
    assert listed["id"] == body["id"] and listed["status"] == "pending"
    assert any(
        "notify test to pager" in r.getMessage() and "local" in r.getMessage() and str(body["id"]) in r.getMessage()
        for r in caplog.records
    )


def test_an_unknown_channel_is_404_echoing_at_most_64_characters(client: FlaskClient) -> None:
    response = post_test(client, {"channel": "nope"})
    assert response.status_code == 404 and response.get_json() == {"error": "no channel named nope"}
    long = "x" * 64 + "TAIL" * 1000
    error = post_test(client, {"channel": long}).get_json()["error"]
    assert error == "no channel named " + "x" * 64 and "TAIL" not in error
    assert post_test(client, {"channel": "OPS"}).status_code == 404  # names are exact
    assert get_json(client, "/api/notifications") == {"notifications": []}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"ops"',
        b"null",
        b"{}",
        b'{"channel": 5}',
        b'{"channel": null}',
        b'{"channel": ["ops"]}',
        b'{"name": "ops"}',
    ],
)
def test_bad_bodies_are_400(client: FlaskClient, data: bytes) -> None:
    response = client.post("/api/notify/test", data=data, content_type="application/json")
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert response.get_json()["error"]


def test_a_form_body_is_400(client: FlaskClient) -> None:
    assert client.post("/api/notify/test", data={"channel": "ops"}).status_code == 400


def test_a_body_over_16_kib_is_413(client: FlaskClient) -> None:
    response = post_test(client, {"channel": "ops", "pad": "x" * (16 * 1024)})
    assert response.status_code == 413 and response.get_json()["error"]


@pytest.mark.sqlite_only("SQLite's write lock and busy timeout")
def test_a_busy_database_is_503(client: FlaskClient, writer: store.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.store.sqlite.BUSY_TIMEOUT_MS", 50)
    writer.execute("BEGIN IMMEDIATE")  # the ingest holds the write lock
    try:
        response = post_test(client, {"channel": "ops"})
    finally:
        writer.execute("ROLLBACK")
    assert response.status_code == 503 and "try again" in response.get_json()["error"]
    assert post_test(client, {"channel": "ops"}).status_code == 202


def test_signed_in_the_test_needs_the_consoles_request(db_path: Path) -> None:
    client = make_app(db_path, users=[USER_LINE], tokens=[TOKEN_LINE], login_backoff_s=0.2).test_client()
    assert post_test(client, {"channel": "ops"}, headers=BUTTON).status_code == 401
    assert post_test(client, {"channel": "ops"}, headers=BEARER).status_code == 202  # a script with a token
    assert sign_in(client).status_code == 303
    assert post_test(client, {"channel": "ops"}).status_code == 403  # no Origin, no header: maybe forged
    assert post_test(client, {"channel": "ops"}, headers={"Origin": "https://evil.example"}).status_code == 403
    assert post_test(client, {"channel": "ops"}, headers=BUTTON).status_code == 202
    assert client.get("/api/notifications").status_code == 200


# --- the console page ----------------------------------------------------------------------------


def test_the_page_lists_each_channel_with_a_button(client: FlaskClient) -> None:
    response = client.get("/notifications")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert re.findall(r'<button[^>]*class="[^"]*notify-test[^"]*"[^>]*data-channel="([^"]+)"', page) == ["ops", "pager"]
    assert '<script type="module" src="/static/notifications.js">' in page
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == [] and "style=" not in page
    assert re.search(r'<a href="/notifications" aria-current="page">Notifications</a>', page)
    assert 'href="/notifications">Notifications</a>' in client.get("/events").get_data(as_text=True)
    with client.get("/static/notifications.js") as script:
        assert script.status_code == 200 and "innerHTML" not in script.get_data(as_text=True)


def test_the_page_without_channels(tmp_path: Path) -> None:
    app = create_app(config_mod.from_dict({"database": {"path": str(tmp_path / "v.db")}}))
    page = app.test_client().get("/notifications").get_data(as_text=True)
    assert "No channels are configured" in page and "notify-test" not in page


# --- /metrics ------------------------------------------------------------------------------------


def families(client: FlaskClient) -> dict[str, Any]:
    text = client.get("/metrics").get_data(as_text=True)
    return {family.name: family for family in text_string_to_metric_families(text)}


def by_channel(family: Any) -> dict[str, float]:
    return {s.labels["channel"]: s.value for s in family.samples if s.name.endswith(("_total", "_seconds", "pending"))}


def test_metrics_start_at_zero_for_every_channel(client: FlaskClient) -> None:
    got = families(client)
    for name, kind in [
        ("vesper_notify_sent", "counter"),
        ("vesper_notify_failed", "counter"),
        ("vesper_notify_dropped", "counter"),
        ("vesper_notify_pending", "gauge"),
        ("vesper_notify_oldest_pending_age_seconds", "gauge"),
    ]:
        assert got[name].type == kind
        assert by_channel(got[name]) == {"ops": 0, "pager": 0}, name


def test_metrics_count_deliveries_and_the_queue(client: FlaskClient, writer: store.Connection) -> None:
    with store.write(writer):
        store.add_counters(writer, {"notify.sent.ops": 3, "notify.failed.ops": 2, "notify.dropped.pager": 1})
        store.add_counters(writer, {"messages.alerts": 4})
    now = time.time()
    old = queue(writer, "ops", "old", now - 30)
    attempt(writer, old, "failed", now - 20, "timeout")
    queue(writer, "ops", "new", now - 5)
    done = queue(writer, "pager", "done", now - 100)
    attempt(writer, done, "sent", now - 99)
    got = families(client)
    assert by_channel(got["vesper_notify_sent"]) == {"ops": 3, "pager": 0}
    assert by_channel(got["vesper_notify_failed"]) == {"ops": 2, "pager": 0}
    assert by_channel(got["vesper_notify_dropped"]) == {"ops": 0, "pager": 1}
    assert by_channel(got["vesper_notify_pending"]) == {"ops": 2, "pager": 0}
    ages = by_channel(got["vesper_notify_oldest_pending_age_seconds"])
    assert 30 <= ages["ops"] < 90 and ages["pager"] == 0
    assert not [name for name in got if name.startswith("vesper_ingest_notify")]  # not counted twice
    assert got["vesper_ingest_messages"].samples[0].value == 4  # the other ingest counters are untouched
