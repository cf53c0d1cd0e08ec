"""The device list at fleet scale (§12), end to end: real Mosquitto, ingest, gunicorn web and Chromium.

A heartbeat's firmware is stored through the real ingest; an offline device with a CRITICAL alert
sorts with the critical ones and counts in both chips (API and console); rows mark what is handled.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from playwright.sync_api import expect

from tests.browser import Watch
from tests.support import wait_for
from tests.test_console_browser import ARTIFACTS, Heartbeats, alert, console  # noqa: F401 (a fixture)

WAIT_S = 60.0  # generous: a busy machine


def api(base: str, path: str, body: Any = None) -> Any:
    """GET (or POST a JSON body to) the console's API; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def device(base: str, device_id: str) -> dict[str, Any]:
    """One device as the API shows it, or {} while the ingest has not stored it yet (404: a busy machine)."""
    try:
        return api(base, f"/api/devices/{device_id}")  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return {}


def test_offline_critical_firmware_and_markers_in_the_api_and_the_console(console, broker, peer, page):  # noqa: F811
    base = console(liveness={"heartbeat_timeout_s": 3.0}).base
    watch = Watch(page)
    peer.publish("vesper/a-gone/status/heartbeat", {"fw": "v154"})
    alert(peer, "a-gone", "Audio", "CRITICAL", "amp failed")  # then silent: offline, its alert kept
    peer.publish("vesper/d-ok/status/heartbeat", {"fw": "v155", "uptime": 1})
    beats = [Heartbeats(broker.port, device) for device in ("b-crit", "c-warn", "d-ok")]  # bodies without fw
    try:
        alert(peer, "b-crit", "Motor", "CRITICAL", "stalled")
        alert(peer, "c-warn", "Power", "WARNING", "low")
        wait_for(lambda: device(base, "a-gone").get("liveness") == "offline", WAIT_S, "a-gone's timeout")
        wait_for(lambda: device(base, "c-warn").get("health") == "warning", WAIT_S, "c-warn's alert")
        ordered = ["a-gone", "b-crit", "c-warn", "d-ok"]  # a-gone: offline, with the critical ones
        wait_for(lambda: [d["id"] for d in api(base, "/api/devices?sort=severity")] == ordered, WAIT_S, "the order")
        listed = {d["id"]: d for d in api(base, "/api/devices")}
        assert (listed["a-gone"]["health"], listed["a-gone"]["markers"]["unconfirmed"]) == ("offline", 1)
        assert (listed["a-gone"]["firmware"], listed["d-ok"]["firmware"]) == ("v154", "v155")  # kept without fw
        summary = api(base, "/api/summary")
        assert summary["health"] == {"critical": 2, "warning": 1, "offline": 1, "unknown": 0, "ok": 1}
        assert (summary["firmware"], summary["firmware_total"]) == ({"v154": 1, "v155": 1}, 2)
        assert [d["id"] for d in api(base, "/api/devices?firmware=v155")] == ["d-ok"]

        page.goto(base + "/")
        expect(page.locator("#live-indicator")).to_have_text("live")
        expect(page.locator("#device-rows tr")).to_have_count(4)
        assert page.locator("#device-rows tr").evaluate_all("rows => rows.map(r => r.dataset.deviceId)") == ordered
        expect(page.locator('#fleet-summary [data-count="critical"]')).to_have_text("2")
        expect(page.locator('#fleet-summary [data-count="offline"]')).to_have_text("1")
        gone = page.locator('#device-rows tr[data-device-id="a-gone"]')
        expect(gone.locator(".c-playback")).to_have_text("unknown (offline)")
        expect(gone.locator('[data-marker="unconfirmed"]')).to_have_text("1 unconfirmed")
        expect(page.locator('#device-rows tr[data-device-id="d-ok"] .c-firmware')).to_have_text("v155")

        api(base, "/api/devices/b-crit/alerts/Motor/ack", {"note": "on my way"})
        api(base, "/api/silences", {"device": "c-warn", "duration_s": 600})
        crit, warn = (page.locator(f'#device-rows tr[data-device-id="{d}"]') for d in ("b-crit", "c-warn"))
        expect(crit.locator('[data-marker="acknowledged"]')).to_have_text("1 acked", timeout=WAIT_S * 1000)
        expect(warn.locator('[data-marker="silenced"]')).to_contain_text("silenced until", timeout=WAIT_S * 1000)

        page.locator('#fleet-summary .chip[data-filter="critical"]').click()
        expect(page.locator("#device-rows tr")).to_have_count(2)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "list-markers.png"), full_page=True)
        page.goto(base + "/devices/a-gone")
        expect(page.locator("#fact-playback")).to_have_text("unknown (offline)")
        expect(page.locator("#fact-firmware")).to_have_text("v154")
    finally:
        for beat in beats:
            beat.stop()
    watch.assert_clean()
