"""History in the console (§13): Chromium against a real gunicorn over episodes written into the store.

The device page's figures and strip, the device's history page, the Reports page's chart, tables, CSV and
problems; every request a page makes goes to the console's own origin; at 390 px no page scrolls sideways.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from shared.config import load
from tests.browser import WAIT_MS, Watch
from tests.support import Process
from tests.test_history_api import BERLIN, seed_history
from tests.test_mobile_browser import PHONE, fits


class Origins:
    """Every URL a page requested."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        self.urls.append(request.url)

    def others(self, base: str) -> list[str]:
        """The requests to any origin but base's (data: URLs are the page's own)."""
        origin = urlsplit(base)
        return [u for u in self.urls if not u.startswith("data:") and urlsplit(u)[:2] != origin[:2]]


@pytest.fixture
def console(make_config: Callable[..., Path], start_web: Callable[..., Process], db_path: Path) -> Iterator[str]:
    """gunicorn over a store seeded with history (history.timezone Europe/Berlin); its base URL."""
    seed_history(db_path, time.time(), incidents=3)
    config = make_config(history={"timezone": BERLIN})
    start_web(config)
    yield f"http://{load(config).web.bind}"


def day(days_ago: float) -> str:
    """The date in Berlin that many days ago."""
    return (datetime.now(ZoneInfo(BERLIN)) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def test_device_page_shows_availability_and_its_strip(console: str, page: Page) -> None:
    watch, origins = Watch(page), Origins(page)
    page.goto(f"{console}/devices/bell-1")
    section = page.locator("#availability")
    expect(section).to_have_attribute("data-state", "shown")
    expect(page.locator("#avail-24h")).to_have_text("100 %")
    expect(page.locator("#avail-7d")).to_have_text("99.40 %")  # an hour of 168
    expect(page.locator("#avail-7d")).to_have_attribute("data-health", "warning")
    spans = page.locator("#avail-strip rect.strip-span")
    expect(spans).to_have_count(2)
    assert sorted(spans.evaluate_all("rs => rs.map(r => r.dataset.kind)")) == ["incident", "outage"]
    titles = spans.evaluate_all("rs => rs.map(r => r.querySelector('title').textContent)")
    assert any(t.startswith("Outage (offline): ") for t in titles)
    assert any(t.startswith("Incident Audio (CRITICAL): ") and t.endswith("still open") for t in titles)
    expect(page.locator("#avail-note")).to_have_text(f"Times in {BERLIN}")
    expect(page.locator("#alert-count")).to_have_text("0")  # the current state: no alert was ever raised live
    page.locator("#history-link").click()
    page.wait_for_url("**/devices/bell-1/history")
    expect(page.locator("#history")).to_have_attribute("data-state", "shown")
    assert origins.others(console) == []
    watch.assert_clean()


def test_history_page_lists_the_episodes_of_its_window(console: str, page: Page) -> None:
    watch, origins = Watch(page), Origins(page)
    page.goto(f"{console}/devices/bell-1/history")
    rows = page.locator("#episode-rows tr.episode")
    expect(rows).to_have_count(2)
    first = rows.first
    expect(first).to_have_attribute("data-kind", "incident")
    expect(first).to_have_attribute("data-open", "yes")
    for text in ("Audio", "CRITICAL", "ops", "open", "1 d"):
        expect(first).to_contain_text(text)
    expect(rows.nth(1)).to_contain_text("1 h")  # the outage's duration
    expect(page.locator("#win-outages")).to_have_text("1")
    expect(page.get_by_text(f"Times in {BERLIN}")).to_be_visible()
    page.goto(f"{console}/devices/bell-1/history?from={day(4)}&to={day(2)}")  # the outage only, at any hour
    expect(page.locator("#history")).to_have_attribute("data-state", "shown")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-kind", "outage")
    expect(page.locator("#window-from")).to_have_value(day(4))
    page.goto(f"{console}/devices/bell-1/history?from={day(1)}&to={day(3)}")  # from after to: said, not sent
    expect(page.locator("#history-error")).to_have_text("From must not be after To")
    assert origins.others(console) == []
    watch.assert_clean()


def test_reports_page_draws_a_bar_per_day_and_its_tables(console: str, page: Page) -> None:
    watch, origins = Watch(page), Origins(page)
    page.goto(f"{console}/reports")
    expect(page.locator("#reports")).to_have_attribute("data-state", "shown")
    days = page.request.get(f"{console}/api/reports/availability?group_by=day").json()["rows"]
    bars = page.locator("#day-chart rect.day-bar")
    expect(bars).to_have_count(len(days))
    assert len(days) in (30, 31)
    assert bars.evaluate_all("bs => bs.map(b => b.dataset.day)") == [row["group"] for row in days]
    assert page.locator("#day-chart").evaluate("n => n.namespaceURI") == "http://www.w3.org/2000/svg"
    expect(page.locator("#zone-note")).to_contain_text(f"Times in {BERLIN}")

    groups = page.locator("#group-rows tr.group-row")
    expect(groups).to_have_count(3)
    assert groups.evaluate_all("rs => rs.map(r => r.dataset.group)")[-1] == "South"  # the worst first, 100 % last
    page.locator("#groups thead th.c-group button").click()
    assert groups.evaluate_all("rs => rs.map(r => r.dataset.group)") == ["=1+1", "North", "South"]
    expect(page.locator("#groups thead th.c-group")).to_have_attribute("aria-sort", "ascending")
    csv = page.request.get(console + page.locator("#groups-csv").get_attribute("href"))
    assert csv.text().splitlines()[0] == "group,name,site,devices,availability,under_99,outages,down_s,mtta_s,mttr_s"
    assert "'=1+1" in csv.text()

    page.locator("#by-tag").click()
    expect(page.locator("#by-tag")).to_have_attribute("aria-pressed", "true")
    expect(groups).to_have_count(2)
    assert sorted(groups.evaluate_all("rs => rs.map(r => r.dataset.group)")) == ["", "roof"]
    assert "group_by=tag" in page.locator("#groups-csv").get_attribute("href")
    assert "by=tag" in page.url

    expect(page.locator("#device-rows tr.problem-row").first).to_have_attribute("data-device", "bell-2")
    expect(page.locator("#subsystem-rows tr.problem-row")).to_have_count(4)  # Audio and S0-S2
    assert origins.others(console) == []
    watch.assert_clean()


def test_history_pages_fit_a_phone(console: str, browser: Browser) -> None:
    context = browser.new_context(**PHONE)
    context.set_default_timeout(WAIT_MS)
    phone = context.new_page()
    try:
        watch = Watch(phone)
        for name, path, ready in (("device-availability", "/devices/bell-1", "#availability[data-state=shown]"),
                                  ("history", "/devices/bell-1/history", "#history[data-state=shown]"),
                                  ("reports", "/reports", "#reports[data-state=shown]")):  # fmt: skip
            phone.goto(console + path)
            expect(phone.locator(ready)).to_be_visible()
            fits(phone, name)
        watch.assert_clean()
    finally:
        context.close()
