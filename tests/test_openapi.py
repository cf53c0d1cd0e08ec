"""The API description (§7): every /api route described, Swagger UI within the CSP, Schemathesis against gunicorn."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from shared import store
from shared.events import dumps
from tests import seed
from tests.browser import Watch
from tests.support import ROOT, Process, wait_for, web_args
from tests.test_security import BEARER, PASSWORD, TOKEN, TOKEN_LINE, USER_LINE
from tests.test_security_browser import sign_in
from vesper_sim import broker as broker_mod
from vesper_web import auth, openapi, openapi_schemas
from vesper_web.registry_rules import CONTROL

T0 = 1_700_000_000.0
SCHEMATHESIS_CLI = [sys.executable, "-m", "schemathesis.cli"]
# The CLI rather than schemathesis.pytest.from_fixture, whose lazy loader breaks on pytest 9.2 (it sets the
# removed Node._nodeid), and for its phases: examples, coverage, fuzzing and stateful (links it infers).
# Bounded: 20 examples per operation, one worker, a fixed seed; about 10 s on a busy machine.
SCHEMATHESIS = """
hooks = "tests.schemathesis_hooks"
seed = 1
workers = 1
[cache]
enabled = false
[generation]
max-examples = 20
[auth.openapi.bearer]
bearer = "TOKEN"
[checks.use_after_free]
# DELETE forgets a device's state in the ingest's next sweep (none runs here), and PATCH registers one (§7):
# a device answering after DELETE, or again after a PATCH, is the documented behaviour, not a use after free.
enabled = false
[[operations]]
# /healthz/pipeline answers 503 while the pipeline is not ok (no ingest runs here): its documented answer, for an
# uptime checker. It and /healthz are open to all; a method they do not take is refused before routing (401 to a
# caller without a session or token, as every other path): only these checks are off, and only here.
include-operation-id = "status.healthz_pipeline"
checks.not_a_server_error.enabled = false
checks.unsupported_method.enabled = false
[[operations]]
include-operation-id = "healthz"
checks.unsupported_method.enabled = false
[[operations]]
# The event stream never ends (it is described for readers, not for a fuzzer that waits for the end).
include-operation-id = "stream.stream"
enabled = false
[[operations]]
# A silence must end after now and after its start, and take ends_at or duration_s: rules of time that a
# schema cannot state, so a schema-valid body may be refused (400 naming the field). Only this check is off.
include-operation-id = "lifecycle.create_silence"
checks.positive_data_acceptance.enabled = false
[[operations]]
# A bulk silence has the same rules of time; a filter may match more than web.bulk_max devices; a bulk health
# check needs the broker and runs one at a time (409): a schema-valid body may be refused, naming why.
include-operation-id = "bulk.bulk"
checks.positive_data_acceptance.enabled = false
"""
HTTP_METHODS = {"GET", "PUT", "POST", "PATCH", "DELETE"}
FLASK_ARG = re.compile(r"<(?:[^<>]*:)?([^<>:]+)>")


# Not an API (decided, §12): the console's HTML pages and sign-in forms, and its static files.
CONSOLE_PAGES = {"/", "/devices/<device_id>", "/events", "/notifications", "/silences", "/login", "/logout",
                 "/devices/<device_id>/history", "/reports", "/audit"}  # fmt: skip


def routed(app: Flask) -> tuple[set[tuple[str, str]], set[str]]:
    """(OpenAPI path, method) of every rule but the console's, and the endpoints of aliases (rules defaults fill in)."""
    operations, aliases = set(), set()
    for rule in app.url_map.iter_rules():
        if rule.rule in CONSOLE_PAGES or rule.rule.startswith("/static/"):
            continue
        if rule.defaults:
            aliases.add(rule.endpoint)
            continue
        path = FLASK_ARG.sub(r"{\1}", rule.rule)
        operations |= {(path, method) for method in (rule.methods or set()) & HTTP_METHODS}
    return operations, aliases


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(path, method) of every operation in an OpenAPI document."""
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item}


def test_every_api_route_is_described(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    operations, aliases = routed(app)
    assert operations == described(document)
    ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert aliases <= ids  # an alias's view is described under its real rule
    assert ("/api/devices/{device_id}", "PATCH") in operations and len(operations) >= 15
    for path in ("/events/stream", "/healthz", "/healthz/pipeline", "/api/status", "/metrics"):
        assert (path, "GET") in operations, path


def test_a_route_added_without_a_description_is_caught(app: Flask) -> None:
    app.add_url_rule("/api/extra", "extra", lambda: "", methods=["POST"])
    operations, _ = routed(app)
    assert operations - described(openapi.describe(app)) == {("/api/extra", "POST")}


def test_every_operation_says_its_errors_and_auth(app: Flask) -> None:
    document = openapi.describe(app)
    assert {"session", "bearer"} == set(document["components"]["securitySchemes"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:  # open to all: /healthz, /healthz/pipeline (auth.OPEN_ENDPOINTS)
                assert operation["operationId"] in auth.OPEN_ENDPOINTS, (path, method)
                continue
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
            if "requestBody" in operation:
                assert "413" in operation["responses"], (path, method)
            if "{device_id}" in path:
                assert {"400", "404"} & set(operation["responses"]), (path, method)


def test_plain_text_pattern_is_the_complement_of_the_registry_rule() -> None:
    pattern = re.compile(openapi_schemas.PLAIN_TEXT)
    chars = (chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF)
    assert [c for c in chars if bool(pattern.fullmatch(c)) == bool(CONTROL.search(c))] == []


def test_docs_page_loads_only_its_own_files(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/api/docs").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    assert "<script>" not in page and "<style" not in page and " style=" not in page
    for source in sources:
        response = client.get(source)
        assert response.status_code == 200, source
        response.close()
    assert client.get("/api/docs/index.html").status_code == 404  # only the two files it needs


# --- a real server: gunicorn over a seeded SQLite file, with sign-in configured ----------------------------------


@dataclass
class Served:
    """A running web process with a broker, and where to reach it."""

    base: str
    path: Path


def _seed(db: Path) -> None:
    """A small fleet: alerts, playback, offline, registered-only, events and a notification."""
    conn = store.open_store(db)
    with store.write(conn):
        store.mark_alive(conn, "bell-1", T0)
        store.upsert_alert(conn, "bell-1", "Motor", "CRITICAL", "Clapper stalled", T0 + 1)
        store.upsert_alert(conn, "bell-1", "Audio", "WARNING", None, T0 + 2)
        store.mark_alive(conn, "bell-2", T0)
        store.set_playback(conn, "bell-2", True, "ABC123")
        store.set_heartbeat(conn, "bell-2", json.dumps({"uptime": 5}))
        store.mark_alive(conn, "bell-3", T0)
        seed.mark_offline(conn, "bell-3", T0 + 100)
        fields = {"name": "North tower", "site": "St Mary's", "tags": ["north", "roof"], "notes": None}
        store.put_entry(conn, "bell-1", {**fields, "heartbeat_timeout_s": 30.0}, T0)
        store.put_entry(conn, "bell-9", {**fields, "name": None, "heartbeat_timeout_s": None}, T0)
        for i in range(5):
            payload = {"subsystem": "Audio", "state": "WARNING", "message": f"n{i}", "previous_state": None}
            store.insert_event(conn, T0 + i, "alert", "warning", "bell-1", dumps(payload))
        store.enqueue(conn, "ops", "1 device offline", "bell-3 went offline", "warning", [1], T0)
    conn.close()


def _toml(sections: dict[str, dict[str, Any]], channels: list[dict[str, str]]) -> str:
    lines = []
    for name, values in sections.items():
        lines += [f"[{name}]", *(f"{key} = {json.dumps(value)}" for key, value in values.items())]
    for channel in channels:
        lines += ["[[notify.channels]]", *(f"{key} = {json.dumps(value)}" for key, value in channel.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One broker and one gunicorn for the module (Schemathesis and the browser share them)."""
    tmp = tmp_path_factory.mktemp("openapi")
    mqtt_port, bind = broker_mod.free_port(), f"127.0.0.1:{broker_mod.free_port()}"
    mosquitto = broker_mod.start(tmp / "mosquitto", mqtt_port)
    db = tmp / "vesper.db"
    _seed(db)
    config = tmp / "vesper.toml"
    sections = {
        "mqtt": {"port": mqtt_port, "client_id": f"vesper-ingest-{mqtt_port}"},
        "web": {"bind": bind, "command_wait_s": 0.2},  # no ingest runs: an acknowledgement stays queued (202)
        "database": {"path": str(db)},
        "auth": {"users": [USER_LINE], "tokens": [TOKEN_LINE], "login_backoff_s": 0.2},
    }
    config.write_text(_toml(sections, [{"name": "ops", "url": "json://127.0.0.1:9/x"}]))
    web = Process(web_args(), config, tmp / "web.log")
    try:
        wait_for(lambda: "bridge connected to" in web.output() or web.proc.poll() is not None, 30, "the web's bridge")
        assert web.proc.poll() is None, web.output()
        yield Served(f"http://{bind}", tmp)
    finally:
        web.kill()
        mosquitto.terminate()
        mosquitto.wait(10)


def test_schemathesis_finds_no_error_and_no_mismatch(served: Served) -> None:
    """Every operation, positive and negative data, all checks: no 5xx, each response as described."""
    document = urllib.request.Request(f"{served.base}/api/openapi.json", headers=BEARER)
    with urllib.request.urlopen(document, timeout=30) as response:
        (served.path / "openapi.json").write_bytes(response.read())
    config = served.path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS.replace("TOKEN", TOKEN))
    run = subprocess.run(
        [*SCHEMATHESIS_CLI, "--config-file", str(config), "run", "openapi.json", "--url", served.base],
        cwd=served.path,  # its caches stay out of the work tree
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # for tests.schemathesis_hooks
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5000:]
    assert "No issues found" in run.stdout, run.stdout[-5000:]


def test_docs_render_in_chromium_within_the_csp(served: Served, page: Page) -> None:
    watch = Watch(page)
    page.goto(f"{served.base}/login?next=/api/docs")
    sign_in(page, PASSWORD)
    expect(page).to_have_url(f"{served.base}/api/docs")
    operations = described(page.request.get(f"{served.base}/api/openapi.json").json())
    expect(page.locator(".opblock")).to_have_count(len(operations))
    expect(page.locator(".opblock-summary-path", has_text="/api/devices/{device_id}/health-check")).to_be_visible()
    page.locator(".opblock-summary", has_text="/api/summary").click()  # open one: its responses render too
    expect(page.locator(".opblock.is-open .responses-table")).to_be_visible()
    watch.assert_clean()
