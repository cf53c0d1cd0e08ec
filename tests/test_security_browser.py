"""Security in a real browser: headless Chromium signs in, presses the button, and meets hostile device strings.

Everything runs for real: Mosquitto, the ingest, gunicorn, and Chromium with the console's CSP.
A clean page shows no dialog, no CSP violation and no console error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from shared.config import load
from tests.browser import Watch
from tests.support import Peer, wait_for
from tests.test_console_browser import alert
from vesper_web.passwd import user_line

PASSWORD = "correct horse battery"
AUTH = {"users": [user_line("alice", PASSWORD)], "login_backoff_s": 0.2}
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(2)</script>",
    "javascript:alert(3)",
    '"><svg onload=alert(4)>',
    "';alert(5);//",
]
SCHEME_LIKE_ID = "javascript:alert"  # letters and a colon: a valid device id, so it must stay inert


@pytest.fixture
def console(make_config: Callable[..., Path], start_ingest: Any, start_web: Any) -> Callable[..., str]:
    """Start ingest and web; returns the console's base URL."""

    def start(**sections: dict[str, Any]) -> str:
        cfg = make_config(**sections)
        start_ingest(cfg)
        start_web(cfg)
        return f"http://{load(cfg).web.bind}"

    return start


def sign_in(page: Page, password: str) -> None:
    page.fill("#username", "alice")
    page.fill("#password", password)
    page.click("#signin-submit")


def test_operator_signs_in_and_the_button_still_works(console, broker, peer, page):
    base = console(auth=AUTH)
    peer.publish("vesper/bell-1/status/heartbeat", {"fw": "v1"})
    alert(peer, "bell-1", "Audio", "WARNING", "amp hot")
    control = Peer(broker.port, subscribe=["vesper/+/control"])
    try:
        page.goto(base + "/devices/bell-1")
        expect(page).to_have_url(base + "/login?next=/devices/bell-1")
        sign_in(page, "not the password")
        expect(page.locator("#signin-error")).to_have_text("Wrong user name or password.")
        page.wait_for_timeout(300)  # the 0.2 s backoff passes

        watch = Watch(page)  # from here on, nothing may go wrong in the page
        sign_in(page, PASSWORD)
        expect(page).to_have_url(base + "/devices/bell-1")
        expect(page.locator("#live-indicator")).to_have_text("live")
        expect(page.locator("#signed-in-user")).to_have_text("alice")
        expect(page.locator("#active-alerts li.alert")).to_have_count(1)
        cookie = next(c for c in page.context.cookies() if c["name"] == "vesper_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
        assert "vesper_session" not in page.evaluate("document.cookie")  # no script can read it

        page.click("#health-check")
        expect(page.locator("#health-check-result")).to_contain_text("Health check sent")
        command = wait_for(lambda: control.received, 20, "the health-check command")[0]
        assert command.topic == "vesper/bell-1/control"
        assert json.loads(command.payload) == {"v": 2, "cmd": "system.health"}
        expect(page.locator("#health-check")).to_be_enabled()
        page.click("#health-check")  # again at once: the device is not asked twice in 10 s
        expect(page.locator("#health-check-result")).to_contain_text("try again in")
        page.wait_for_timeout(500)
        assert len(control.received) == 1
        assert watch.dialogs == []
        assert [e for e in watch.errors if "status of 429" not in e] == []  # Chromium logs the refused fetch

        page.click("#signout")
        expect(page).to_have_url(base + "/login")
        assert page.evaluate("fetch('/api/devices').then(r => r.status)") == 401
        page.goto(base + "/")
        expect(page).to_have_url(base + "/login?next=/")
    finally:
        control.close()


def test_hostile_device_strings_render_as_text(console, peer, page):
    base = console()
    watch = Watch(page)
    for device in ("bell-x", SCHEME_LIKE_ID):
        peer.publish(f"vesper/{device}/status/heartbeat", {"note": HOSTILE})
        for i, text in enumerate(HOSTILE):
            alert(peer, device, text, ["WARNING", "CRITICAL", "FAILED"][i % 3], text)
        peer.publish(
            f"vesper/{device}/status/info", {"type": "playback_started", "payload": {"melody_uid": HOSTILE[0]}}
        )
        peer.publish(f"vesper/{device}/status/info", {"type": HOSTILE[1], "payload": {"x": HOSTILE[3]}})

    page.goto(base + "/")
    link = page.locator(f'#device-rows tr[data-device-id="{SCHEME_LIKE_ID}"] .c-id a')
    expect(link).to_have_text(SCHEME_LIKE_ID)
    assert link.get_attribute("href") == "/devices/javascript%3Aalert"  # a path on this site, never a scheme
    expect(page.locator('#device-rows tr[data-device-id="bell-x"] .c-playback')).to_have_text(HOSTILE[0])
    link.click()
    expect(page).to_have_url(base + "/devices/javascript%3Aalert")
    expect(page.locator("#active-alerts li.alert")).to_have_count(len(HOSTILE))

    for path in ("/devices/bell-x", "/devices/javascript:alert", "/events", "/events?device=javascript:alert"):
        page.goto(base + path)
        expect(page.locator("#live-indicator")).to_have_text("live")
        main = page.locator("main")
        for text in HOSTILE:
            expect(main).to_contain_text(text)
        # The page's own availability strip (§13) is the one SVG: none came from a device's text.
        assert page.locator("main img, main svg:not(#avail-strip), main script, main iframe").count() == 0
        hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("/") and not h.startswith("//") for h in hrefs), hrefs
    # Live arrivals take the other code path: the stream event itself is rendered.
    page.goto(base + "/devices/bell-x")
    expect(page.locator("#live-indicator")).to_have_text("live")
    alert(peer, "bell-x", "Live", "FAILED", HOSTILE[1])
    expect(page.locator('#active-alerts li.alert[data-subsystem="Live"] .message')).to_have_text(HOSTILE[1])
    assert page.locator("main img, main svg:not(#avail-strip), main script").count() == 0
    watch.assert_clean()  # no dialog, no CSP violation report, no error


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/devices/javascript:alert(1)", 404),
        ("/devices/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 404),
        ("/devices/%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404),
        ("/events?device=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 400),
        ("/events?device=javascript:alert(1)", 400),
    ],
)
def test_pages_for_bad_ids_are_errors_and_inert(console, page, path, status):
    base = console()
    watch = Watch(page)
    response = page.goto(base + path)
    assert response is not None and response.status == status
    assert page.locator("body img:not(.brand-mark), body svg, body script").count() == 0
    assert "alert(1)" not in page.locator("body").inner_text()
    assert watch.dialogs == []
    assert [e for e in watch.errors if "Failed to load resource" not in e] == []  # the 404 itself is expected


def test_a_hostile_next_after_sign_in_stays_on_the_site(console, page):
    base = console(auth=AUTH)
    watch = Watch(page)
    page.goto(base + "/login?next=javascript:alert(1)%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E")
    assert page.locator("main img").count() == 0
    sign_in(page, PASSWORD)
    expect(page).to_have_url(base + "/")
    expect(page.locator("#live-indicator")).to_have_text("live")
    watch.assert_clean()
