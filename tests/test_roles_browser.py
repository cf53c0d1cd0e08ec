"""Roles in a real browser (§14): headless Chromium signs in as a viewer, an operator and an admin on a real
gunicorn, ingest and broker, and sees only what the role may do.

A viewer sees no acknowledge or silence controls, no health check, no registry edit or CSV import, no bulk bar,
no new-silence form or "End now", and no Audit link; an operator sees the controls and no Audit link; an admin
sees the Audit link. A control a viewer's page is made to show anyway meets the server's 403, and the page shows
the server's words. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from shared.config import load
from tests.browser import Watch
from tests.support import Peer
from tests.test_console_browser import ARTIFACTS, alert
from vesper_web.passwd import new_token, user_line

PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "admin")
SETUP, SETUP_LINE = new_token("setup", "operator")
AUTH = {"users": [user_line(role, PASSWORD, role) for role in ROLES], "tokens": [SETUP_LINE], "login_backoff_s": 0.2}


def silence(base: str) -> None:
    """One silence of bell-1, made by a script, so the silences page has a row to end."""
    body = json.dumps({"device": "bell-1", "duration_s": 3600, "comment": "rope"}).encode()
    headers = {"Authorization": f"Bearer {SETUP}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(base + "/api/silences", body, headers), timeout=15) as answer:
        assert answer.status == 201


def sign_in(page: Page, base: str, role: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", role)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    expect(page).to_have_url(base + "/")


def shown(page: Page, selector: str, visible: bool) -> None:
    """The control is on screen, or hidden, as the role says."""
    locator = page.locator(selector).first
    expect(locator).to_be_visible() if visible else expect(locator).to_be_hidden()


def the_pages(page: Page, base: str, role: str) -> None:
    """The list, a device and the silences page, each checked for what the role may see."""
    acts, admin = role != "viewer", role == "admin"
    expect(page.locator("#signed-in-user")).to_have_text(role)
    expect(page.locator("#signed-in-role")).to_have_text(role)
    expect(page.locator("body")).to_have_attribute("data-role", role)
    expect(page.locator("#nav-audit")).to_have_count(1 if admin else 0)
    if admin:
        expect(page.locator("#nav-audit")).to_have_attribute("href", "/audit")
    expect(page.locator("#device-rows tr[data-device-id='bell-1']")).to_have_count(1)
    shown(page, "#bulk", acts)
    shown(page, "#registry-csv", True)  # the export is a read
    page.click("#registry-csv summary")
    shown(page, "#csv-export", True)
    shown(page, "#csv-import", acts)
    page.screenshot(path=str(ARTIFACTS / f"browser-test-roles-{role}-devices.png"), full_page=True)

    page.goto(base + "/devices/bell-1")
    expect(page.locator("#active-alerts li.alert")).to_have_count(1)
    expect(page.locator("#device")).to_have_attribute("data-state", "known")
    for selector in ("#health-check", "#registry-edit", "#active-alerts .alert-actions", "#active-alerts .ack-button"):
        shown(page, selector, acts)
    if acts:
        expect(page.locator("#health-check")).to_be_enabled()
    page.screenshot(path=str(ARTIFACTS / f"browser-test-roles-{role}-device.png"), full_page=True)

    page.goto(base + "/silences")
    expect(page.locator("#silence-rows tr.silence")).to_have_count(1)
    shown(page, "#new-silence", acts)
    shown(page, "#silence-rows .end-silence", acts)
    shown(page, "#silences th.c-action", acts)
    page.screenshot(path=str(ARTIFACTS / f"browser-test-roles-{role}-silences.png"), full_page=True)


@pytest.fixture
def console(make_config: Callable[..., Path], start_ingest: Any, start_web: Any, peer: Peer) -> str:
    """The ingest and web with the three users; bell-1 with an alert and a silence. The console's base URL."""
    cfg = make_config(auth=AUTH)
    start_ingest(cfg)
    start_web(cfg)
    base = f"http://{load(cfg).web.bind}"
    peer.publish("vesper/bell-1/status/heartbeat", {"fw": "v1"})
    alert(peer, "bell-1", "Audio", "WARNING", "amp hot")
    silence(base)
    ARTIFACTS.mkdir(exist_ok=True)
    return base


def test_each_role_sees_what_it_may_do(console: str, browser: Browser) -> None:
    for role in ROLES:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = context.new_page()
            watch = Watch(page)
            sign_in(page, console, role)
            the_pages(page, console, role)
            watch.assert_clean()
        finally:
            context.close()


def test_on_a_phone_the_header_keeps_to_the_screen(console: str, browser: Browser) -> None:
    """The admin's header (name, role, the Audit link) never makes the page scroll sideways at 390 px."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page, console, "admin")
        expect(page.locator("#live-indicator")).to_have_text("live")
        expect(page.locator("#device-rows tr[data-device-id='bell-1']")).to_have_count(1)  # the page is drawn
        expect(page.locator("#signed-in-role")).to_be_visible()
        expect(page.locator("#nav-audit")).to_have_count(1)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        page.screenshot(path=str(ARTIFACTS / "browser-test-roles-admin-phone.png"))
    finally:
        context.close()


def test_a_refusal_shows_the_servers_words(console: str, page: Page) -> None:
    """A viewer's page made to show an operator's control (as if the role changed while it was open)."""
    base = console
    watch = Watch(page)
    sign_in(page, base, "viewer")
    page.goto(base + "/devices/bell-1")
    expect(page.locator("#active-alerts li.alert")).to_have_count(1)
    page.evaluate("document.body.dataset.role = 'operator'")
    page.click("#active-alerts .ack-button")
    result = page.locator("#active-alerts .ack-result")
    expect(result).to_have_text("this needs the operator role (yours: viewer)")
    expect(result).to_have_attribute("data-result", "error")
    assert [e for e in watch.errors if "status of 403" not in e] == []  # Chromium logs the refused fetch
    assert watch.dialogs == []
