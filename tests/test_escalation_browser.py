"""The notifications page in Chromium over a real gunicorn: an escalation carries its badge, and "Send test"
(POST /api/notify/test, admins only) is shown to an admin's token and hidden from a viewer's."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from shared import config as config_mod
from shared import notify_text, store
from tests.browser import WAIT_MS, Watch, browser  # noqa: F401 - browser is a fixture
from tests.test_notify_e2e import with_notify
from vesper_web.passwd import token_hash

TOKENS = {"viewer": "vsp_viewer_secret", "admin": "vsp_admin_secret"}


def configured(make_config, db_path: Path) -> Path:
    """Two channels, a rule escalating from ops to pager, a viewer and an admin token; one message of each kind."""
    rule = {"channel": "ops", "escalate_after_s": 900.0, "escalate_to": "pager"}
    config = with_notify(make_config(), {"ops": "json://127.0.0.1:9/o", "pager": "json://127.0.0.1:9/p"}, [rule])
    tokens = "".join(f'  "{role}:{role}:{token_hash(token)}",\n' for role, token in TOKENS.items())
    config.write_text(config.read_text() + f"\n[auth]\ntokens = [\n{tokens}]\n")
    writer = store.Writer(db_path)  # the schema, as the ingest makes it
    with writer.transaction() as conn:
        items = [("critical", "bell-1", "bell-1: Audio CRITICAL: <b>hot</b>")]
        for channel, heading in (("ops", notify_text.HEADING), ("pager", notify_text.escalation_heading(900))):
            title, body, kind = notify_text.compose(items, heading=heading)
            store.enqueue(conn, channel, title, body, kind, [], time.time())
    writer.close()
    return config


def test_the_page_marks_escalations_and_shows_send_test_to_admins(
    make_config, db_path, start_web, browser: Browser  # noqa: F811 - the fixture
) -> None:
    config = configured(make_config, db_path)
    start_web(config)
    base = f"http://{config_mod.load(config).web.bind}"
    for role, token in TOKENS.items():
        context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        watch = Watch(page)
        page.goto(base + "/notifications")
        pager = page.locator('#notification-rows tr[data-channel="pager"]')
        expect(pager.locator(".n-escalation")).to_have_text("escalation")
        expect(pager).to_have_attribute("data-escalation", "true")
        expect(pager.locator(".n-title")).to_have_text("Unacknowledged for 15 min: 1 critical alert")
        expect(page.locator('#notification-rows tr[data-channel="ops"]')).to_have_attribute("data-escalation", "false")
        assert page.locator('#notification-rows tr[data-channel="ops"] .n-escalation').count() == 0
        assert page.locator("#notification-rows b").count() == 0  # the device's text stays text
        button = page.locator('button.notify-test[data-channel="ops"]')
        expect(button).to_be_visible() if role == "admin" else expect(button).to_be_hidden()
        watch.assert_clean()
        context.close()
