"""The alert lifecycle in the console (§9): acknowledge, silence, flapping, unconfirmed; Chromium on the real stack.

Mosquitto, the ingest (which carries out acknowledgements) and gunicorn are real; so is the CSP.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests import test_console_browser
from tests.browser import Watch
from tests.test_console_browser import ARTIFACTS, XSS, Heartbeats, alert

console = test_console_browser.console  # the fixture that starts the real ingest and gunicorn

HHMM = re.compile(r"silenced until (\w{3} \d{1,2} )?\d{2}:\d{2}")
REFUSED = "status of 400"  # Chromium logs a refused fetch as a console error


def open_device(page: Page, base: str, device: str) -> Locator:
    """The device's page, live; returns its list of active alerts."""
    page.goto(f"{base}/devices/{device}")
    expect(page.locator("#live-indicator")).to_have_text("live")
    return page.locator("#active-alerts li.alert")


def item(page: Page, subsystem: str) -> Locator:
    return page.locator(f'#active-alerts li.alert[data-subsystem="{subsystem}"]')


def acknowledge(alert_item: Locator, note: str) -> None:
    alert_item.locator(".ack-note-input").fill(note)
    alert_item.locator(".ack-button").click()


def local_input_value(page: Page, hours: float) -> str:
    """A datetime-local value `hours` from now in the browser's own zone."""
    # Swedish dates are ISO-shaped: "2026-03-03 14:05:00".
    js = "(ms) => new Date(Date.now() + ms).toLocaleString('sv-SE').slice(0, 16).replace(' ', 'T')"
    return page.evaluate(js, hours * 3600e3)


def test_acknowledge_with_a_note(console, peer, page):
    base = console().base
    watch = Watch(page)
    peer.publish("vesper/bell-1/status/heartbeat", {})
    alert(peer, "bell-1", "Audio", "WARNING", "amp hot")
    items = open_device(page, base, "bell-1")
    expect(items).to_have_count(1)
    audio = item(page, "Audio")
    expect(audio).to_have_attribute("data-acknowledged", "false")

    # A refused note is shown next to its control (the input's maxlength is not what the API trusts).
    audio.locator(".ack-note-input").evaluate("(input) => { input.value = 'x'.repeat(501); }")
    audio.locator(".ack-button").click()
    expect(audio.locator(".ack-result")).to_contain_text("note: a string of at most 500 characters")
    expect(audio.locator(".ack-note-input")).to_have_attribute("aria-invalid", "true")

    acknowledge(audio, "replacing the amp on Tuesday")
    expect(audio.locator(".acknowledged")).to_contain_text("acknowledged by local")
    expect(audio.locator(".ack-note")).to_have_text("replacing the amp on Tuesday")
    expect(audio).to_have_attribute("data-acknowledged", "true")
    expect(audio.locator(".ack-form")).to_be_hidden()
    expect(page.locator('#device-events tr[data-type="alert_acknowledged"]')).to_have_count(1)

    page.reload()  # what the API says, not what the page remembered
    expect(page.locator("#live-indicator")).to_have_text("live")
    expect(audio.locator(".ack-note")).to_have_text("replacing the amp on Tuesday")

    # A "/" travels in the API's path as %2F (§12), and a name of ".." too; only "." and ".." whole cannot.
    alert(peer, "bell-1", "Power/../Main", "WARNING", "on battery")
    acknowledge(item(page, "Power/../Main"), "")
    expect(item(page, "Power/../Main")).to_have_attribute("data-acknowledged", "true")
    alert(peer, "bell-1", "..", "WARNING", "a dot segment")
    expect(item(page, "..").locator(".ack-button")).to_be_disabled()
    expect(item(page, "..").locator(".ack-result")).to_contain_text("cannot be sent to the API")

    alert(peer, "bell-1", "Audio", "CRITICAL", "amp gone")  # a new state: unacknowledged again
    expect(audio).to_have_attribute("data-state", "CRITICAL")
    expect(audio).to_have_attribute("data-acknowledged", "false")
    expect(audio.locator(".acknowledged")).to_have_count(0)
    expect(audio.locator(".ack-form")).to_be_visible()
    assert [e for e in watch.errors if REFUSED not in e] == [] and watch.dialogs == []


def test_silence_from_the_device_page_and_end_it_on_the_silences_page(console, peer, page):
    base = console().base
    watch = Watch(page)
    peer.publish("vesper/bell-2/status/heartbeat", {})
    alert(peer, "bell-2", "Audio", "WARNING", "amp hot")
    alert(peer, "bell-2", "Motor", "CRITICAL", "clapper stalled")
    expect(open_device(page, base, "bell-2")).to_have_count(2)
    audio, motor = item(page, "Audio"), item(page, "Motor")

    # Only Motor, until a time two hours on.
    motor.locator(".only-subsystem input").check()
    until = local_input_value(page, 2)
    motor.locator(".until-input").fill(until)
    motor.locator(".until-button").click()
    clock = "(v) => new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit'}).format(new Date(v))"
    expect(motor.locator(".silenced")).to_contain_text(page.evaluate(clock, until))  # in the browser's own clock
    expect(audio).to_have_attribute("data-silenced", "false")

    # The whole device for an hour.
    audio.locator(".silence-controls button", has_text="1 h").click()
    expect(audio.locator(".silence-result")).to_contain_text("Silenced until")
    expect(audio.locator(".silenced")).to_have_text(HHMM)
    expect(audio).to_have_attribute("data-silenced", "true")
    acknowledge(audio, "amp on order")
    expect(audio.locator(".ack-note")).to_have_text("amp on order")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-test-lifecycle-device.png"), full_page=True)

    page.click("#active-alerts a.more")  # "silences", with the device filled in
    expect(page).to_have_url(base + "/silences?device=bell-2")
    expect(page.locator("#silence-device")).to_have_value("bell-2")
    rows = page.locator("#silence-rows tr.silence")
    expect(rows).to_have_count(2)
    hour = rows.first  # soonest end first
    expect(hour.locator(".c-match")).to_have_text("device bell-2")
    expect(hour.locator(".c-by")).to_have_text("local")
    expect(hour).to_have_attribute("data-status", "active")
    expect(rows.nth(1).locator(".c-match")).to_contain_text("device bell-2")
    expect(rows.nth(1).locator(".c-match")).to_contain_text("subsystem Motor")

    page.screenshot(path=str(ARTIFACTS / "browser-test-silences.png"), full_page=True)
    hour.locator(".end-silence").click()
    expect(rows).to_have_count(1)
    rows.first.locator(".end-silence").click()
    expect(rows).to_have_count(0)
    expect(page.locator("#silences-empty")).to_be_visible()

    open_device(page, base, "bell-2")
    expect(audio).to_have_attribute("data-silenced", "false")
    expect(page.locator("#active-alerts .silenced")).to_have_count(0)
    watch.assert_clean()


def test_silences_page_creates_one_and_shows_a_refusal_by_its_field(console, page):
    base = console().base
    watch = Watch(page)
    page.goto(base + "/silences")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Silences")
    expect(page.locator("#silences-empty")).to_have_text(re.compile("No silences"))

    page.fill("#silence-device", "bad id")
    page.click("#silence-create")
    expect(page.locator("#error-device")).to_contain_text("device: a device id")
    expect(page.locator("#silence-device")).to_have_attribute("aria-invalid", "true")

    page.fill("#silence-device", "")
    page.fill("#silence-tag", "north")
    page.fill("#silence-starts", local_input_value(page, 1))  # a future one
    page.select_option("#silence-length", "until")
    page.fill("#silence-until", local_input_value(page, 3))
    page.fill("#silence-comment", "bell tower painting")
    page.click("#silence-create")
    expect(page.locator("#error-device")).to_be_hidden()
    row = page.locator("#silence-rows tr.silence")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "scheduled")
    expect(row.locator(".c-match")).to_have_text("tag north")
    expect(row.locator(".c-comment")).to_have_text("bell tower painting")
    assert [e for e in watch.errors if REFUSED not in e] == [] and watch.dialogs == []


def test_a_flapping_subsystem_shows_its_badge_until_it_settles(console, peer, page):
    base = console(alerts={"flap_transitions": 4, "flap_window_s": 4.0}).base
    watch = Watch(page)
    peer.publish("vesper/bell-3/status/heartbeat", {})
    alert(peer, "bell-3", "Network", "WARNING", "Wi-Fi RSSI low")
    items = open_device(page, base, "bell-3")
    network = item(page, "Network")
    expect(network).to_have_attribute("data-flapping", "false")

    for state in ("CRITICAL", "WARNING", "CRITICAL"):  # with the first, 4 changes: flapping
        alert(peer, "bell-3", "Network", state, "Wi-Fi RSSI low")
    expect(network.locator(".flap-badge")).to_have_text("flapping")
    expect(network).to_have_attribute("data-flapping", "true")
    expect(network).to_have_attribute("data-state", "CRITICAL")  # the table holds its current state
    expect(page.locator('#device-events tr[data-type="alert_flapping"]')).to_have_count(1)
    expect(items).to_have_count(1)

    # Stable for the window: alert_flapping_ended, and the page re-reads.
    expect(page.locator('#device-events tr[data-type="alert_flapping_ended"]')).to_have_count(1)
    expect(network.locator(".flap-badge")).to_have_count(0)
    expect(network).to_have_attribute("data-flapping", "false")
    watch.assert_clean()


def test_an_offline_devices_alerts_are_greyed_unconfirmed(console, broker, peer, page):
    base = console(liveness={"heartbeat_timeout_s": 2.0}).base
    watch = Watch(page)
    beats = Heartbeats(broker.port, "bell-4")
    try:
        alert(peer, "bell-4", "FileManager", "WARNING", "SD mount failed")
        expect(open_device(page, base, "bell-4")).to_have_count(1)
        files = item(page, "FileManager")
        expect(files).to_have_attribute("data-confirmed", "true")
        expect(files.locator(".unconfirmed")).to_have_count(0)

        ARTIFACTS.mkdir(exist_ok=True)
        beats.stop()  # the sweep declares it offline two seconds on
        expect(page.locator("#fact-liveness")).to_have_text("offline")
        expect(files).to_have_attribute("data-confirmed", "false")
        expect(files.locator(".unconfirmed")).to_contain_text(re.compile(r"unconfirmed since \d{2}:\d{2}"))
        assert files.locator(".state").evaluate("(node) => getComputedStyle(node).filter") == "grayscale(1)"
        page.screenshot(path=str(ARTIFACTS / "browser-test-lifecycle-unconfirmed.png"))

        peer.publish("vesper/bell-4/status/heartbeat", {})  # back: confirmed again
        expect(files).to_have_attribute("data-confirmed", "true")
        expect(files.locator(".unconfirmed")).to_have_count(0)
    finally:
        beats.stop()
    watch.assert_clean()


def test_hostile_note_comment_and_subsystem_are_text(console, peer, page):
    base = console().base
    watch = Watch(page)
    peer.publish("vesper/bell-5/status/heartbeat", {})
    alert(peer, "bell-5", XSS, "FAILED", XSS)
    expect(open_device(page, base, "bell-5")).to_have_count(1)
    hostile = page.locator("#active-alerts li.alert").first
    acknowledge(hostile, XSS)
    expect(hostile.locator(".ack-note")).to_have_text(XSS)
    hostile.locator(".only-subsystem input").check()
    hostile.locator(".silence-controls button", has_text="4 h").click()
    expect(hostile.locator(".silenced")).to_have_text(HHMM)
    expect(hostile.locator(".only-subsystem")).to_have_text(f"only {XSS}")
    assert page.locator("main img").count() == 0

    page.goto(base + "/silences")
    page.fill("#silence-device", "bell-5")
    page.fill("#silence-comment", XSS)
    page.click("#silence-create")
    rows = page.locator("#silence-rows tr.silence")
    expect(rows).to_have_count(2)
    expect(page.locator("#silence-rows .c-comment", has_text=XSS)).to_have_count(1)
    expect(page.locator("#silence-rows .c-match", has_text=f"subsystem {XSS}")).to_have_count(1)
    assert page.locator("main img").count() == 0
    watch.assert_clean()  # no dialog, no console error, no CSP report
