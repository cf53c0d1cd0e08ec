"""The console in a real browser: Chromium against a real broker, the real ingest and gunicorn web."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from shared.config import load
from tests.browser import Watch
from tests.support import Peer, Process, wait_for

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@dataclass
class Stack:
    """The running processes of one test and where to reach the console."""

    base: str
    config: Path
    web: Process


@pytest.fixture
def console(make_config: Callable[..., Path], start_ingest: Any, start_web: Any) -> Callable[..., Stack]:
    """Start ingest and web on this test's broker (config sections as keywords)."""

    def start(**sections: dict[str, Any]) -> Stack:
        cfg = make_config(**sections)
        start_ingest(cfg)
        web = start_web(cfg)
        return Stack(f"http://{load(cfg).web.bind}", cfg, web)

    return start


def alert(peer: Peer, device: str, subsystem: str, state: str, msg: str | None = None) -> None:
    """Publish one alert message as a device does."""
    body = {"subsystem": subsystem, "state": state}
    if msg is not None:
        body["msg"] = msg
    peer.publish(f"vesper/{device}/status/alerts", body)


def mark(page: Page) -> None:
    """Leave a marker in the page: it survives everything but a reload."""
    page.evaluate("window.__marker = 'still-here'")


def assert_not_reloaded(page: Page) -> None:
    """The marker is still there."""
    assert page.evaluate("window.__marker") == "still-here"


class Heartbeats:
    """A device that keeps sending live heartbeats in the background until stopped."""

    def __init__(self, port: int, device: str, every_s: float = 0.3) -> None:
        self.peer = Peer(port)
        self.device = device
        self.every_s = every_s
        self.stopped = threading.Event()
        self.peer.publish(f"vesper/{device}/status/heartbeat", {"n": 0})
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stopped.wait(self.every_s):
            n += 1
            self.peer.publish(f"vesper/{self.device}/status/heartbeat", {"n": n})

    def stop(self) -> None:
        """Go silent (idempotent)."""
        if not self.stopped.is_set():
            self.stopped.set()
            self.thread.join(10)
            self.peer.close()


def test_dot_follows_alerts_and_silence_without_reload(console, broker, peer, page):
    base = console(liveness={"heartbeat_timeout_s": 3.0}).base
    watch = Watch(page)
    beats = Heartbeats(broker.port, "bell-1")
    try:
        page.goto(base + "/")
        expect(page.locator("#live-indicator")).to_have_text("live")
        row = page.locator('#device-rows tr[data-device-id="bell-1"]')
        dot = row.locator(".dot")
        expect(dot).to_have_attribute("data-health", "ok")
        mark(page)

        alert(peer, "bell-1", "FileManager", "WARNING", "SD mount failed")
        expect(dot).to_have_attribute("data-health", "warning")
        expect(row.locator(".c-alerts")).to_have_text("1")

        alert(peer, "bell-1", "FileManager", "CRITICAL", "SD card gone")
        expect(dot).to_have_attribute("data-health", "critical")

        alert(peer, "bell-1", "FileManager", "CLEARED")
        expect(dot).to_have_attribute("data-health", "ok")
        expect(row.locator(".c-alerts")).to_have_text("0")

        beats.stop()
        expect(dot).to_have_attribute("data-health", "offline")
        expect(row.locator(".c-liveness")).to_have_text("offline")

        # A device never seen before appears as soon as an event names it.
        alert(peer, "bell-2", "Audio", "WARNING", "amp hot")
        newcomer = page.locator('#device-rows tr[data-device-id="bell-2"] .dot')
        expect(newcomer).to_have_attribute("data-health", "warning")
        expect(page.locator("#device-rows tr")).to_have_count(2)
        assert_not_reloaded(page)
    finally:
        beats.stop()
    watch.assert_clean()


def test_detail_page_shows_the_current_alert_set(console, broker, peer, page):
    base = console().base
    watch = Watch(page)
    control = Peer(broker.port, subscribe=["vesper/+/control"])
    try:
        peer.publish("vesper/bell-3/status/heartbeat", {"fw": "v155"})
        alert(peer, "bell-3", "TimeKeeper", "WARNING", "NTP sync failed")
        page.goto(base + "/devices/bell-3")
        expect(page.locator("#live-indicator")).to_have_text("live")
        section = page.locator("section#active-alerts")
        items = section.locator("li.alert")
        expect(items).to_have_count(1)
        mark(page)

        alert(peer, "bell-3", "FileManager", "CRITICAL", "ConfigManager health check failed")
        critical = section.locator('li.alert[data-subsystem="FileManager"]')
        expect(critical).to_contain_text("ConfigManager health check failed")
        expect(critical).to_have_attribute("data-severity", "critical")
        expect(items).to_have_count(2)
        expect(items.first).to_have_attribute("data-subsystem", "FileManager")  # most severe first
        expect(page.locator("#device-dot")).to_have_attribute("data-health", "critical")

        alert(peer, "bell-3", "FileManager", "CLEARED")
        expect(critical).to_have_count(0)
        alert(peer, "bell-3", "TimeKeeper", "CLEARED")
        expect(items).to_have_count(0)
        expect(section.locator("#no-alerts")).to_be_visible()
        expect(section).to_contain_text("No active alerts")
        expect(page.locator("#device-dot")).to_have_attribute("data-health", "ok")
        expect(page.locator("#device-events tr")).to_have_count(4)  # the log lives elsewhere

        page.click("#health-check")
        expect(page.locator("#health-check-result")).to_contain_text("Health check sent")
        command = wait_for(lambda: control.received, 20, "the health-check command")[0]
        assert command.topic == "vesper/bell-3/control"
        assert json.loads(command.payload) == {"v": 2, "cmd": "system.health"}
        assert_not_reloaded(page)
    finally:
        control.close()
    watch.assert_clean()


def test_device_strings_are_shown_as_text(console, peer, page):
    base = console().base
    watch = Watch(page)
    peer.publish("vesper/bell-4/status/heartbeat", {"note": XSS})
    alert(peer, "bell-4", "FileManager", "WARNING", XSS)
    alert(peer, "bell-4", XSS, "CRITICAL", XSS)
    peer.publish("vesper/bell-4/status/info", {"type": "playback_started", "payload": {"melody_uid": XSS}}, qos=1)
    peer.publish("vesper/bell-4/status/info", {"type": XSS, "payload": {"x": XSS}}, qos=1)

    page.goto(base + "/devices/bell-4")
    expect(page.locator("#live-indicator")).to_have_text("live")
    section = page.locator("#active-alerts")
    expect(section.locator("li.alert")).to_have_count(2)
    expect(section.locator(".subsystem", has_text=XSS)).to_have_count(1)
    expect(section.locator(".message", has_text=XSS)).to_have_count(2)
    expect(page.locator("#fact-playback")).to_have_text(XSS)
    expect(page.locator("#device-events tr")).to_have_count(4)

    # Arriving live takes the other code path: the stream event itself is rendered.
    alert(peer, "bell-4", "Audio", "FAILED", XSS)
    expect(section.locator("li.alert")).to_have_count(3)
    expect(section.locator('li.alert[data-subsystem="Audio"] .message')).to_have_text(XSS)

    page.goto(base + "/events?playback=1")  # the playback event too: hidden unless asked (§12)
    expect(page.locator("#event-rows tr")).to_have_count(5)
    expect(page.locator("#event-rows")).to_contain_text(f"{XSS} CRITICAL: {XSS}")
    page.goto(base + "/")
    expect(page.locator('#device-rows tr[data-device-id="bell-4"] .c-playback')).to_have_text(XSS)

    assert page.locator("main img").count() == 0
    for path in ("/devices/bell-4", "/events"):
        page.goto(base + path)
        expect(page.locator("main")).to_contain_text(XSS)
        assert page.locator("main img").count() == 0
    watch.assert_clean()  # no dialog, and no CSP report of a blocked inline handler either


def test_live_indicator_and_reconnect_rereads_state(console, start_web, peer, page):
    stack = console()
    peer.publish("vesper/bell-5/status/heartbeat", {})
    alert(peer, "bell-5", "Network", "WARNING", "Wi-Fi RSSI low")
    page.goto(stack.base + "/devices/bell-5")
    indicator = page.locator("#live-indicator")
    expect(indicator).to_have_text("live")
    expect(indicator).to_have_attribute("data-state", "live")
    expect(page.locator("#active-alerts li.alert")).to_have_count(1)
    mark(page)

    stack.web.stop()
    expect(indicator).to_have_text("reconnecting")
    expect(indicator).to_have_attribute("data-state", "reconnecting")
    alert(peer, "bell-5", "Network", "CLEARED")  # while the page cannot hear it
    start_web(stack.config)
    expect(indicator).to_have_text("live")
    expect(page.locator("#active-alerts li.alert")).to_have_count(0)
    expect(page.locator("#no-alerts")).to_be_visible()
    assert_not_reloaded(page)


def test_pages_run_clean_under_the_csp(console, peer, page):
    base = console().base
    watch = Watch(page)
    peer.publish("vesper/bell-6/status/heartbeat", {"fw": "v155"})
    alert(peer, "bell-6", "Motor", "WARNING", "Clapper stalled")
    peer.publish("vesper/bell-6/status/info", {"type": "playback_started", "payload": {"melody_uid": "MEL1"}}, qos=1)
    for path in ("/", "/devices/bell-6", "/events", "/events?device=bell-6", "/devices/never-seen"):
        response = page.goto(base + path)
        assert response is not None and response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expect(page.locator("#live-indicator")).to_have_text("live")
    expect(page.locator("#device-unknown")).to_be_visible()
    alert(peer, "never-seen", "Audio", "WARNING", "first words")
    expect(page.locator("#device-unknown")).to_be_hidden()
    expect(page.locator("#active-alerts li.alert")).to_have_count(1)

    ARTIFACTS.mkdir(exist_ok=True)
    for name, path in (("devices", "/"), ("device", "/devices/bell-6"), ("events", "/events")):
        page.goto(base + path)
        expect(page.locator("#live-indicator")).to_have_text("live")
        page.screenshot(path=str(ARTIFACTS / f"browser-test-{name}.png"), full_page=True)
    watch.assert_clean()

    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(base + "/devices/bad%20id", timeout=10)
    bad.value.close()
    assert bad.value.code == 404
