"""The timeline in the console (§12): filters kept in the URL, "Older" back to the oldest, silences as events.

Chromium on the real stack (Mosquitto, the ingest, gunicorn), over a store seeded before it starts.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from shared import store
from shared.events import dumps
from tests import test_console_browser
from tests.browser import Watch
from tests.support import wait_for
from tests.test_console_browser import alert
from tests.test_lifecycle_e2e import ok

console = test_console_browser.console  # the fixture that starts the real ingest and gunicorn
T0 = time.time() - 3600  # within the retention: the ingest prunes older events at its start
KINDS = [("alert", "critical", {"subsystem": "Audio", "state": "CRITICAL", "message": "hot", "previous_state": None}),
         ("playback_started", "info", {"melody_uid": "ABC"}),
         ("alert", "warning", {"subsystem": "Motor", "state": "WARNING", "message": None, "previous_state": None}),
         ("playback_stopped", "info", {"melody_uid": "ABC"}),
         ("alert_cleared", "info", {"subsystem": "Audio", "previous_state": "CRITICAL"})]  # fmt: skip
TOTAL = 600
DEADLINE = 60  # seconds: two busy cores


def seed(db_path: Path) -> None:
    """600 events of 10 devices, before the stack starts."""
    conn = store.open_store(db_path)
    with store.write(conn):
        store.insert_events(conn, [(T0 + i, KINDS[i % 5][0], KINDS[i % 5][1], f"bell-{i % 10}",
                                    dumps(KINDS[i % 5][2])) for i in range(TOTAL)])  # fmt: skip
    conn.close()


def row_ids(page: Page) -> list[int]:
    return [int(i) for i in page.locator("#event-rows tr.ev").evaluate_all("rows => rows.map(r => r.dataset.eventId)")]


def open_timeline(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#live-indicator")).to_have_text("live")
    expect(page.locator("#events-empty")).to_be_hidden()


def test_600_events_paged_back_through_older_none_missing_none_repeated(console, db_path, peer, page) -> None:
    seed(db_path)
    stack = console()
    watch = Watch(page)
    open_timeline(page, f"{stack.base}/events?playback=1")
    expect(page.locator("#event-rows tr.ev")).to_have_count(200)
    older = page.locator("#older")
    for shown in (400, 600):
        older.click()
        expect(page.locator("#event-rows tr.ev")).to_have_count(shown)
    older.click()  # the last page is empty: the oldest is reached
    expect(page.locator("#oldest")).to_be_visible()
    expect(older).to_be_hidden()
    ids = row_ids(page)
    assert ids == list(range(TOTAL, 0, -1))  # newest on top, each once

    alert(peer, "bell-live", "Audio", "WARNING", "still live at the head")  # the tail still follows
    expect(page.locator('#event-rows tr.ev[data-type="alert"]').first).to_contain_text("still live at the head")
    assert len(row_ids(page)) == TOTAL + 1
    watch.assert_clean()


def test_filters_in_the_url_show_only_their_rows_and_survive_a_reload(console, db_path, peer, page) -> None:
    seed(db_path)
    stack = console()
    watch = Watch(page)
    open_timeline(page, f"{stack.base}/events?severity=critical&type=alert")
    rows = page.locator("#event-rows tr.ev")
    expect(rows).to_have_count(120)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.severity + ' ' + r.dataset.type)")) == {"critical alert"}
    expect(page.locator('input[name="severity"][value="critical"]')).to_be_checked()
    expect(page.locator('#type-choices input[value="alert"]')).to_be_checked()
    alert(peer, "bell-3", "Motor", "WARNING")  # live, but not critical: not shown
    alert(peer, "bell-3", "Audio", "FAILED", "gone")  # live and critical: shown at the top
    expect(rows.first).to_contain_text("gone")
    page.reload()
    expect(page.locator("#live-indicator")).to_have_text("live")
    expect(rows).to_have_count(121)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.severity)")) == {"critical"}

    # Playback is hidden unless asked; the checkbox asks, and the URL keeps it.
    open_timeline(page, f"{stack.base}/events")
    expect(page.locator('#event-rows tr.ev[data-type^="playback"]')).to_have_count(0)
    page.locator("#show-playback").check()
    page.locator("#timeline-filter button[type=submit]").click()
    page.wait_for_url("**/events?playback=1")
    expect(page.locator('#event-rows tr.ev[data-type^="playback"]').first).to_be_visible()

    # A link to event N is before=N+1: the page shows N first, marked.
    open_timeline(page, f"{stack.base}/events?playback=1&before=101")
    expect(page.locator("#event-rows tr.ev").first).to_have_attribute("data-event-id", "100")
    expect(page.locator("tr.ev.target")).to_have_attribute("data-event-id", "100")
    expect(page.locator("#timeline-past")).to_be_visible()
    watch.assert_clean()


def _silence_events(config: Path) -> list[dict[str, Any]]:
    return ok(config, "GET", "/api/events?type=silence_created,silence_ended&limit=1000")["events"]


def test_silences_created_and_ended_are_events_in_the_api_and_on_the_page(console, page) -> None:
    stack = console()
    early = ok(stack.config, "POST", "/api/silences", {"device": "bell-1", "duration_s": 3600, "comment": "rope"}, 201)
    ok(stack.config, "DELETE", f"/api/silences/{early['id']}", status=204)
    planned = ok(stack.config, "POST", "/api/silences", {"tag": "north", "duration_s": 2}, 201)

    def both_told() -> list[dict[str, Any]] | None:
        found = _silence_events(stack.config)
        return found if Counter(e["type"] for e in found) == {"silence_created": 2, "silence_ended": 2} else None

    told = wait_for(both_told, DEADLINE, "silence_created and silence_ended of both silences")
    by_silence = {(e["payload"]["id"], e["type"]): e for e in told}
    ended_early = by_silence[(early["id"], "silence_ended")]
    assert ended_early["source_id"] == "bell-1" and ended_early["payload"]["by"] == "local"
    assert by_silence[(early["id"], "silence_created")]["payload"]["comment"] == "rope"
    assert by_silence[(early["id"], "silence_created")]["id"] < ended_early["id"]
    ended_planned = by_silence[(planned["id"], "silence_ended")]
    assert ended_planned["source_id"] == f"silence:{planned['id']}" and ended_planned["payload"]["by"] is None

    open_timeline(page, f"{stack.base}/events")
    expect(page.locator('#event-rows tr.ev[data-type="silence_created"]')).to_have_count(2)
    ended = page.locator('#event-rows tr.ev[data-type="silence_ended"]')
    expect(ended).to_have_count(2)
    expect(ended.filter(has_text="ended early by local")).to_have_count(1)
    expect(ended.filter(has_text="tag north ended as planned")).to_have_count(1)
