"""The Audit page (§14) in a real browser: headless Chromium, signed in as an admin on a real gunicorn, ingest,
broker and database, in Europe/Berlin.

The page shows the log newest first (a hostile name tried at sign-in as plain text), times in the browser's
locale; its filters live in the URL (the actor; a time typed in the browser's zone); "Older" pages back to the
end without a row twice; the CSV link downloads what the filters show, with its header. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from shared import store
from shared.config import load
from shared.store import audit as audit_store
from tests.browser import WAIT_MS, Watch
from tests.test_console_browser import ARTIFACTS
from tests.test_security_e2e import Http
from vesper_web import audit
from vesper_web.passwd import new_token, user_line

PASSWORD = "correct horse battery"
OPS, OPS_LINE = new_token("ops", "operator")
AUTH = {"users": [user_line("admin", PASSWORD, "admin")], "tokens": [OPS_LINE], "login_backoff_s": 0.2}
HOSTILE = '=HYPERLINK("http://x")<img src=x onerror=alert(1)>'[:64]
SEEDED = 130  # more than a page (100): "Older" has something to show
T_SEED = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def seed(db: Path | str) -> None:
    """SEEDED entries by "robot", one a second from 2026-01-01T00:00:00Z."""
    conn = store.open_store(db)
    with store.write(conn):
        for i in range(SEEDED):
            audit_store.record(conn, audit_store.Entry(
                T_SEED + i, "robot", "token", "operator", "192.0.2.1", "PATCH", "registry.patch_device",
                f"/api/devices/bell-{i}", 200, "fields: site",
            ))  # fmt: skip
    conn.close()


def silence(base: str) -> None:
    body = json.dumps({"device": "bell-1", "duration_s": 3600}).encode()
    headers = {"Authorization": f"Bearer {OPS}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(base + "/api/silences", body, headers), timeout=15) as answer:
        assert answer.status == 201


def ids(page: Page) -> list[str]:
    return page.locator("#audit-rows tr.audit-entry").evaluate_all("rows => rows.map(r => r.dataset.entryId)")


def shown(page: Page) -> None:
    expect(page.locator("#audit")).to_have_attribute("data-state", "shown")


def download(page: Page) -> list[list[str]]:
    with page.expect_download() as started:
        page.click("#audit-csv")
    return list(csv.reader(io.StringIO(Path(started.value.path()).read_text())))


def test_the_audit_page_shows_filters_pages_and_downloads(
    make_config: Callable[..., Path], start_ingest: Any, start_web: Any, browser: Browser, db_path: Path
) -> None:
    cfg = make_config(auth=AUTH)
    seed(db_path)
    start_ingest(cfg)
    start_web(cfg)
    base = f"http://{load(cfg).web.bind}"
    silence(base)
    assert Http(base).sign_in(HOSTILE, "not the password").status == 401
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Europe/Berlin",
                                  locale="en-GB", accept_downloads=True)  # fmt: skip
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        watch = Watch(page)
        page.goto(base + "/login?next=/audit")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("#signin-submit")
        expect(page).to_have_url(base + "/audit")
        shown(page)

        # newest first: the admin's own sign-in, the failed one (its name as text), the operator's silence
        rows = page.locator("#audit-rows tr.audit-entry")
        expect(rows).to_have_count(100)  # a page (audit.js PAGE)
        expect(rows.nth(0)).to_have_attribute("data-action", "login.login")
        expect(rows.nth(1).locator(".c-actor .mono")).to_have_text(HOSTILE)
        expect(rows.nth(1).locator(".c-status")).to_have_text("401")
        expect(rows.nth(2).locator(".c-actor .mono")).to_have_text("ops")
        expect(rows.nth(2).locator(".c-detail")).to_have_text("device=bell-1 duration_s=3600")
        expect(page.locator("#audit-rows img")).to_have_count(0)
        time_of = rows.nth(3).locator(".c-time time")
        expect(time_of).to_have_attribute("datetime", "2026-01-01T00:02:09.000Z")
        expect(time_of).to_have_text("1 Jan 01:02:09")  # the browser's locale and zone (en-GB, Berlin)
        page.screenshot(path=str(ARTIFACTS / "browser-test-audit.png"), full_page=True)

        # "Older" pages to the end, never a row twice; the CSV of the unfiltered log holds them all
        first = ids(page)
        page.click("#older")
        expect(page).to_have_url(re.compile(r"[?&]cursor="))
        shown(page)
        expect(page.locator("#oldest")).to_be_visible()
        expect(page.locator("#older")).to_be_hidden()
        everything = first + ids(page)
        assert len(everything) == len(set(everything)) == SEEDED + 3
        page.click("#audit-newest")
        shown(page)
        table = download(page)
        assert table[0] == list(audit.CSV_COLUMNS) and sorted(r[0] for r in table[1:]) == sorted(everything)
        assert [r[2] for r in table[1:] if r[9] == "401"] == ["'" + HOSTILE]  # defused in the CSV

        # filter by actor (the form, into the URL), then a time typed in the browser's zone
        page.fill("#audit-actor", "ops")
        page.click("#audit-filter button[type=submit]")
        expect(page).to_have_url(re.compile(r"[?&]actor=ops(&|$)"))
        shown(page)
        expect(rows).to_have_count(1)
        expect(rows.nth(0)).to_have_attribute("data-actor", "ops")
        assert [r[2] for r in download(page)[1:]] == ["ops"]
        page.goto(base + "/audit?to=2026-01-01T01%3A00%3A30&actor=robot")  # Berlin: 00:00:30Z
        shown(page)
        expect(page.locator("#audit-to")).to_have_value("2026-01-01T01:00:30")
        expect(rows).to_have_count(30)
        expect(rows.nth(0).locator(".c-target")).to_have_text("/api/devices/bell-29")
        page.screenshot(path=str(ARTIFACTS / "browser-test-audit-filtered.png"), full_page=True)
        watch.assert_clean()
    finally:
        context.close()
