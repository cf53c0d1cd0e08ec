"""Bulk actions and the registry's CSV from the list page (§12): Chromium on the real stack, desktop and a phone."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from shared import config as config_mod
from shared import store
from tests import test_console_browser
from tests.browser import Watch
from tests.test_console_browser import ARTIFACTS
from tests.test_mobile_browser import PHONE, api, phone  # noqa: F401 - phone is a fixture

console = test_console_browser.console  # the fixture that starts the real ingest and gunicorn
NORTH = [f"n-{n:02d}" for n in range(12)]


def seed(config: Path) -> None:
    """Twelve devices tagged north (two already tagged new), three south."""
    conn = store.connect(config_mod.load(config).database.target)
    try:
        with store.write(conn):
            rows = [(d, "North", ["north"] + (["new"] if d in NORTH[:2] else [])) for d in NORTH]
            rows += [(f"s-{n}", "South", ["south"]) for n in range(3)]
            store.put_entries(conn, ["site", "tags"], rows, time.time())
    finally:
        conn.close()


def act(page: Page, action: str, question: str, outcome: str, tag: str = "") -> None:
    """Choose an action in the bulk panel, check the confirmation names the count, confirm, see the outcome."""
    page.select_option("#bulk-action", action)
    if tag:
        page.fill("#bulk-tag", tag)
    page.click("#bulk-go")
    expect(page.locator("#bulk-question")).to_have_text(question)
    page.click("#bulk-yes")
    expect(page.locator("#bulk-result")).to_contain_text(outcome)


def test_bulk_actions_confirm_the_count_and_do_it(console, page: Page) -> None:
    stack = console()
    seed(stack.config)
    watch = Watch(page)
    page.goto(f"{stack.base}/?tag=north")
    page.click("#bulk summary")
    act(page, "add_tag", "Add the tag to 12 devices?", "tagged: 10 devices changed (2 devices unchanged", "new")
    assert {d["id"] for d in api(stack.base, "GET", "/api/devices?tag=new")} == set(NORTH)
    act(page, "remove_tag", "Remove the tag from 12 devices?", "untagged: 12 devices changed", "new")
    assert api(stack.base, "GET", "/api/devices?tag=new") == []
    page.select_option("#bulk-action", "silence")
    page.fill("#bulk-comment", "tower works")
    act(page, "silence", "Silence 12 devices?", "silenced: 12 devices")
    silences = api(stack.base, "GET", "/api/silences")["silences"]
    assert [(s["tag"], s["comment"]) for s in silences] == [("north", "tower works")]
    for query, count in (("site=South", 3), ("site=South&q=s-1", 1)):  # a site silence, a list of devices
        page.goto(f"{stack.base}/?{query}")
        page.click("#bulk summary")
        act(page, "silence", f"Silence {count} device{'s' if count > 1 else ''}?", f"silenced: {count} device")
    page.goto(f"{stack.base}/silences")
    matchers = page.locator("#silence-rows .c-match")
    expect(matchers).to_have_count(3)
    expect(page.locator("#silence-rows")).to_contain_text("site South")
    expect(page.locator("#silence-rows")).to_contain_text("1 device")
    page.goto(f"{stack.base}/?tag=north")
    page.click("#bulk summary")
    # Cancel does nothing.
    page.select_option("#bulk-action", "add_tag")
    page.fill("#bulk-tag", "never")
    page.click("#bulk-go")
    expect(page.locator("#bulk-question")).to_have_text("Add the tag to 12 devices?")
    page.click("#bulk-no")
    expect(page.locator("#bulk-result")).to_have_text("Nothing done.")
    assert api(stack.base, "GET", "/api/devices?tag=never") == []
    watch.assert_clean()


def test_csv_export_has_the_filters_rows_and_import_shows_each_line(console, page: Page, tmp_path: Path) -> None:
    stack = console()
    seed(stack.config)
    watch = Watch(page)
    page.goto(f"{stack.base}/?site=South")
    page.click("#registry-csv summary")
    with page.expect_download() as download:
        page.click("#csv-export")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sorted(r["id"] for r in rows) == ["s-0", "s-1", "s-2"] and {r["site"] for r in rows} == {"South"}
    upload = tmp_path / "import.csv"
    upload.write_text("id,name,tags\nimp-1,One,east\nbad id!,Two,\nimp-2,Two,BAD TAG\n")
    page.set_input_files("#csv-file", str(upload))
    page.click("#csv-import-go")
    expect(page.locator("#csv-result")).to_have_text("1 created, 0 updated, 2 refused")
    lines = page.locator("#csv-lines li")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("line 3: id:")
    expect(lines.nth(1)).to_contain_text("line 4: tags:")
    assert api(stack.base, "GET", "/api/devices/imp-1")["name"] == "One"
    watch.assert_clean()


def test_bulk_controls_fit_a_phone_and_work_by_tap(console, phone: Page) -> None:  # noqa: F811 - the fixture
    stack = console()
    seed(stack.config)
    phone.goto(f"{stack.base}/?tag=south")
    phone.tap("#bulk summary")
    phone.tap("#registry-csv summary")
    phone.select_option("#bulk-action", "health_check")
    phone.tap("#bulk-go")
    expect(phone.locator("#bulk-question")).to_have_text("Send a health check to 3 devices?")
    expect(phone.locator("#bulk-yes")).to_be_visible()
    width = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    (ARTIFACTS / "mobile").mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "mobile" / "bulk.png"), full_page=True)
    assert width[0] <= width[1], width
    phone.tap("#bulk-yes")
    expect(phone.locator("#bulk-result")).to_contain_text("health checks under way for: 3 devices")
