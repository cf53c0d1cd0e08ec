"""The console on a phone (§12): Chromium at 390×844, mobile and touch, on the real stack, every page and action.

A fleet with acknowledged, silenced, flapping, unconfirmed and "/"-subsystem alerts and a 64-character
id; on each page the document is no wider than the screen, and every action is tapped and checked
through the API. Screenshots of each page are written to test-artifacts/mobile/ on every run: look at them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from shared.config import load
from tests.browser import WAIT_MS, Watch
from tests.support import Peer, wait_for
from tests.test_console_browser import ARTIFACTS, Heartbeats, alert
from tests.test_notify_e2e import rule, with_notify

SHOTS = ARTIFACTS / "mobile"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}
LONG_ID = "st-marys-north-tower-belfry-bell-controller-unit-0001-rev-c.lan"  # 62 characters, one word
CHECKS_S = 30.0


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A page in a phone-like context: 390×844 CSS pixels, mobile viewport, touch, 3× pixels."""
    context = browser.new_context(**PHONE)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    yield context.new_page()
    context.close()


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    """One JSON request to the console's API (no auth configured: loopback)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def alerts_of(base: str, device: str) -> dict[str, dict[str, Any]]:
    """The device's active alerts by subsystem, with their lifecycle fields ({} while it is not known yet)."""
    try:
        return {a["subsystem"]: a for a in api(base, "GET", f"/api/devices/{device}")["alerts"]}
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return {}


def fits(page: Page, name: str) -> None:
    """No sideways scroll: the document is no wider than the screen; the page's screenshot kept."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    page.evaluate("() => window.scrollTo(0, 0)")  # a tap scrolled: the sticky bar would be drawn mid-page
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert widths[0] <= widths[1], f"{name}: the document is {widths[0]} px wide on a {widths[1]} px screen"


def seed(base: str, peer: Peer) -> None:
    """The fleet: every kind of alert the list and the device page mark, each readable through the API."""
    for device in ("bell-1", "bell-2", "bell-4", LONG_ID):
        peer.publish(f"vesper/{device}/status/heartbeat", {"uptime": 1})
    alert(peer, "bell-1", "Audio", "WARNING", "amp hot")
    alert(peer, "bell-1", "Power/Main", "CRITICAL", "on battery")
    alert(peer, "bell-1", "Motor", "WARNING", "clapper slow")
    alert(peer, LONG_ID, "Network", "WARNING", "Wi-Fi RSSI low")
    for state in ("WARNING", "CRITICAL", "WARNING", "CRITICAL"):  # flapping
        alert(peer, "bell-2", "Network", state, "link unstable")
    alert(peer, "bell-4", "Audio", "WARNING", "speaker crackle")
    wait_for(lambda: "Audio" in alerts_of(base, "bell-1") and "Audio" in alerts_of(base, "bell-4"), CHECKS_S, "alerts")
    api(base, "POST", "/api/devices/bell-1/alerts/Audio/ack", {"note": "on it"})
    api(base, "POST", "/api/silences", {"device": "bell-4", "duration_s": 3600, "comment": "painting the tower"})
    api(base, "PATCH", "/api/devices/bell-2", {"name": "South tower", "site": "St Mary's", "tags": ["south", "roof"]})
    wait_for(lambda: alerts_of(base, "bell-2").get("Network", {}).get("flapping"), CHECKS_S, "bell-2 flapping")


def test_every_page_fits_a_phone_and_every_action_is_a_tap(make_config, start_ingest, start_web, broker, peer, phone):
    sections = {"liveness": {"heartbeat_timeout_s": 3.0}, "alerts": {"flap_transitions": 4, "flap_window_s": 60.0}}
    config = with_notify(make_config(**sections), {"ops": "json://127.0.0.1:9/x"}, [rule("ops", group_wait_s=0.5)])
    start_ingest(config)
    start_web(config)
    base = f"http://{load(config).web.bind}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    watch = Watch(phone)
    control = Peer(broker.port, subscribe=["vesper/+/control"])
    beats = Heartbeats(broker.port, "bell-1")
    try:
        seed(base, peer)
        peer.publish("vesper/bell-3/status/heartbeat", {})
        alert(peer, "bell-3", "FileManager", "WARNING", "SD mount failed")  # bell-3 falls silent: unconfirmed
        unconfirmed = lambda: alerts_of(base, "bell-3").get("FileManager", {}).get("confirmed") is False  # noqa: E731
        wait_for(unconfirmed, CHECKS_S, "bell-3 offline")

        phone.goto(base + "/")
        expect(phone.locator("#live-indicator")).to_have_text("live")
        expect(phone.locator("#device-rows tr")).to_have_count(5)
        cut = phone.locator(f'#device-rows tr[data-device-id="{LONG_ID}"] .c-id a')
        assert cut.evaluate("(a) => a.scrollWidth > a.clientWidth && getComputedStyle(a).textOverflow") == "ellipsis"
        cut.hover()
        expect(cut).to_have_attribute("title", LONG_ID)  # whole on hover; never broken mid-word
        fits(phone, "devices")

        phone.goto(f"{base}/devices/{LONG_ID}")
        expect(phone.locator("#live-indicator")).to_have_text("live")
        heading = phone.locator(".device-title > .mono")
        heading.tap()
        expect(heading).to_have_class("mono whole")  # whole on tap
        fits(phone, "device-long-id")

        phone.goto(f"{base}/devices/bell-1")
        expect(phone.locator("#live-indicator")).to_have_text("live")
        power = phone.locator('#active-alerts li.alert[data-subsystem="Power/Main"]')
        expect(power.locator(".ack-button")).to_be_enabled()
        fits(phone, "device")
        power.locator(".ack-button").tap()
        expect(power).to_have_attribute("data-acknowledged", "true")
        assert alerts_of(base, "bell-1")["Power/Main"]["acknowledged"]["by"] == "local"

        motor = phone.locator('#active-alerts li.alert[data-subsystem="Motor"]')
        motor.locator(".only-subsystem input").tap()
        motor.locator('button[data-hours="1"]').tap()
        expect(motor.locator(".silence-result")).to_contain_text("Silenced until")
        silences = api(base, "GET", "/api/silences")["silences"]
        assert [(s["device"], s["subsystem"]) for s in silences if s["device"] == "bell-1"] == [("bell-1", "Motor")]

        phone.locator("#health-check").tap()
        expect(phone.locator("#health-check-result")).not_to_be_empty()
        wait_for(lambda: any(m.topic == "vesper/bell-1/control" for m in control.received), CHECKS_S, "the command")
        sent = next(m for m in control.received if m.topic == "vesper/bell-1/control")
        assert json.loads(sent.payload)["cmd"] == "system.health"

        phone.locator("#registry-edit").tap()
        phone.locator("#field-name").fill("North tower")
        phone.locator("#registry-save").tap()
        wait_for(lambda: api(base, "GET", "/api/devices/bell-1")["name"] == "North tower", CHECKS_S, "the edit")
        fits(phone, "device-after-actions")

        phone.goto(base + "/silences")
        painting = phone.locator(".silences tr", has_text="painting the tower")
        expect(painting).to_have_count(1)
        fits(phone, "silences")
        painting.locator(".end-silence").tap()
        wait_for(lambda: all(s["device"] != "bell-4" for s in api(base, "GET", "/api/silences")["silences"]),
                 CHECKS_S, "the silence to end")  # fmt: skip

        phone.goto(base + "/events")
        expect(phone.locator("#event-rows tr").first).to_be_visible()
        fits(phone, "events")

        phone.goto(base + "/notifications")  # the body on the page, its event ids linking to the timeline
        expect(phone.locator("#notification-rows .n-body").first).to_contain_text("bell-")
        link = phone.locator("#notification-rows .c-events a").first
        event_id = int(link.inner_text())
        expect(link).to_have_attribute("href", f"/events?before={event_id + 1}")
        fits(phone, "notifications")

        phone.goto(base + "/api/docs")
        expect(phone.locator(".swagger-ui .opblock").first).to_be_visible()
        expect(phone.locator(".docs-bar a.back")).to_have_attribute("href", "/")
        fits(phone, "api-docs")

        phone.goto(base + "/no-such-page")
        fits(phone, "not-found")
    finally:
        beats.stop()
        control.close()
    # The 404 page is a 404, which Chromium logs as a failed load; nothing else may be logged.
    assert [e for e in watch.errors if "status of 404" not in e] == [] and watch.dialogs == []
