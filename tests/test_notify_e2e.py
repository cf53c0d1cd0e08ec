"""Notifications end to end: the real ingest and web, a real broker, a real webhook and a real SMTP server."""

from __future__ import annotations

import json
import random
import threading
import urllib.request
from pathlib import Path
from typing import Any

from shared import config as config_mod
from shared import store
from tests.support import wait_for

CRITICAL = {"subsystem": "Audio", "state": "CRITICAL", "msg": "amplifier hot"}
TIMEOUT = 30


def with_notify(path: Path, channels: dict[str, str], rules: list[dict[str, Any]], **notify: Any) -> Path:
    """Append [notify], its channels and rules to a test's config file (TOML arrays of tables)."""
    lines = ["", "[notify]", *(f"{k} = {json.dumps(v)}" for k, v in notify.items())]
    for name, url in channels.items():
        lines += ["[[notify.channels]]", f"name = {json.dumps(name)}", f"url = {json.dumps(url)}"]
    for rule in rules:
        lines += ["[[notify.rules]]", *(f"{k} = {json.dumps(v)}" for k, v in rule.items())]
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    config_mod.load(path)
    return path


def rule(channel: str, **overrides: Any) -> dict[str, Any]:
    """A rule for alerts and outages, critical and up, a short window."""
    return {"channel": channel, "types": ["alert", "device_offline"], "group_wait_s": 1.0, **overrides}


def api(config: Path, path: str, body: dict | None = None) -> Any:
    """GET (or POST with a JSON body) on the running web; the JSON answer."""
    url = f"http://{config_mod.load(config).web.bind}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def sent_rows(read_db) -> list[dict[str, Any]]:
    """The delivery queue, oldest first."""
    return list(reversed(store.notifications(read_db(), 10_000)))


def test_one_critical_alert_is_one_message_per_channel(make_config, start_ingest, start_web, peer, webhook, mailbox):
    config = with_notify(make_config(), {"hook": webhook.url, "mail": mailbox.url}, [rule("hook"), rule("mail")])
    start_ingest(config)
    start_web(config)
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)
    webhook.wait(lambda h: len(h.messages) >= 1, TIMEOUT, "the webhook message")
    mailbox.wait(1, TIMEOUT)
    [hook] = webhook.messages
    assert hook["title"] == "Vesper: 1 critical alert" and "bell-1: Audio CRITICAL: amplifier hot" in hook["message"]
    assert hook["type"] == "failure"
    assert mailbox.messages[0]["Subject"] == "Vesper: 1 critical alert"
    event_id = peer.wait_events(1, type="alert")[0]["id"]
    wait_for(lambda: len([n for n in api(config, "/api/notifications")["notifications"] if n["status"] == "sent"]) == 2,
             TIMEOUT, "both rows sent")  # fmt: skip
    rows = api(config, "/api/notifications")["notifications"]
    assert sorted(n["channel"] for n in rows) == ["hook", "mail"]
    assert all(n["event_ids"] == [event_id] and n["attempts"] == 1 and n["sent_at"] for n in rows)


def test_a_blip_tells_no_one(make_config, start_ingest, peer, webhook):
    config = with_notify(make_config(), {"hook": webhook.url}, [rule("hook", min_severity="warning", group_wait_s=2.0)])
    start_ingest(config)
    peer.publish("vesper/blip/status/alerts", {"subsystem": "Net", "state": "WARNING"})
    peer.publish("vesper/blip/status/alerts", {"subsystem": "Net", "state": "CLEARED"})
    peer.publish("vesper/marker/status/alerts", CRITICAL)  # same group: once it is out, the blip was decided
    webhook.wait(lambda h: len(h.messages) >= 1, TIMEOUT, "the marker's message")
    assert webhook.titles() == ["Vesper: 1 critical alert"]
    assert "blip" not in webhook.messages[0]["message"] and "marker" in webhook.messages[0]["message"]


def test_a_storm_is_one_message_and_its_end_one_more(make_config, start_ingest, peer, webhook, read_db):
    base = make_config(liveness={"heartbeat_timeout_s": 2.0, "sweep_interval_s": 0.2})
    config = with_notify(base, {"hook": webhook.url}, [rule("hook", group_wait_s=5.0)])
    start_ingest(config)
    devices = [f"site-a-{i:03d}" for i in range(500)]
    for device in devices:
        peer.client.publish(f"vesper/{device}/status/heartbeat", "{}", qos=1)
    wait_for(lambda: len(store.devices(read_db())) == 500, TIMEOUT, "500 devices known")
    # Silence: all 500 go offline in the same few sweeps, 2 s later.
    webhook.wait(lambda h: len(h.messages) >= 1, TIMEOUT, "the outage message")
    alive = threading.Event()

    def keep_alive() -> None:
        """The devices are back, and keep reporting (twice per timeout) until the test has its answer."""
        while not alive.is_set():
            for device in devices:
                peer.client.publish(f"vesper/{device}/status/heartbeat", "{}", qos=1)
            alive.wait(1.0)

    beats = threading.Thread(target=keep_alive, daemon=True)
    beats.start()
    try:
        webhook.wait(lambda h: any("back online" in t for t in h.titles()), TIMEOUT, "the resolved message")
    finally:
        alive.set()
        beats.join()
    outage = [m for m in webhook.messages if "offline" in m["title"]]
    assert len(outage) <= 2 and sum(int(m["title"].split()[1]) for m in outage) == 500
    assert "and 480 more" in outage[0]["message"] or len(outage) == 2
    back = [m for m in webhook.messages if "back online" in m["title"]]
    assert [m["title"] for m in back] == ["Vesper: 500 devices back online"]


def test_a_failing_receiver_gets_it_later_and_never_delays_another_channel(
    make_config, start_ingest, start_web, peer, webhook, mailbox
):
    config = with_notify(make_config(), {"hook": webhook.url, "mail": mailbox.url}, [rule("hook"), rule("mail")])
    webhook.status = 503
    start_ingest(config)
    start_web(config)
    peer.publish("vesper/bell-9/status/alerts", CRITICAL)
    mailbox.wait(1, TIMEOUT)  # the other channel is not held up by the failing one
    webhook.wait(lambda h: h.attempts >= 2, TIMEOUT, "two failed attempts")
    recovered = threading.Timer(30.0 - 2.0, lambda: setattr(webhook, "status", 200))  # 503 for ~30 s in all
    recovered.start()
    try:
        webhook.wait(lambda h: len(h.messages) == 1, 90, "the message after the receiver recovered")
    finally:
        recovered.cancel()
    def hook_sent() -> list[dict[str, Any]]:
        rows = api(config, "/api/notifications")["notifications"]
        return [n for n in rows if n["channel"] == "hook" and n["status"] == "sent"]

    [row] = wait_for(hook_sent, TIMEOUT, "the hook row sent")
    assert row["attempts"] == webhook.attempts >= 5 and "503" in (row["last_error"] or "")


def test_kill_nine_during_a_storm_loses_nothing(make_config, start_ingest, peer, webhook, read_db):
    config = with_notify(make_config(), {"hook": webhook.url}, [rule("hook", group_wait_s=0.3)])
    ingest = start_ingest(config)
    kills = 0
    rng = random.Random(7)
    for wave in range(6):
        for i in range(40):
            peer.client.publish(f"vesper/w{wave}-{i}/status/alerts", json.dumps(CRITICAL), qos=1)
        if wave < 5:  # kill at a random point: after a random number of this wave's events went out
            seen, prefix = rng.randint(1, 40), f"w{wave}-"
            wait_for(lambda s=seen, p=prefix: sum(e["source_id"].startswith(p) for e in peer.unique_events()) >= s,
                     TIMEOUT, f"{seen} events of wave {wave}")  # fmt: skip
            ingest.kill()
            kills += 1
            ingest = start_ingest(config)
    devices = {f"w{wave}-{i}" for wave in range(6) for i in range(40)}
    wait_for(lambda: {a[0] for a in store.all_alerts(read_db())} == devices, TIMEOUT, "every alert stored")
    alert_ids = {e["id"] for e in store.events_after(read_db(), 0, limit=10_000) if e["type"] == "alert"}

    def covered() -> bool:
        rows = sent_rows(read_db)
        return all(r["status"] == "sent" for r in rows) and {i for r in rows for i in r["event_ids"]} >= alert_ids

    wait_for(covered, 60, "every alert in a sent message")
    rows = sent_rows(read_db)
    received = [(m["title"], m["message"]) for m in webhook.messages]
    for r in rows:
        assert (r["title"], r["body"]) in received, r["id"]
    assert kills == 5 and 0 <= len(received) - len(rows) <= kills


def test_restarts_and_history_send_nothing(make_config, start_ingest, peer, webhook, read_db):
    plain = make_config(liveness={"heartbeat_timeout_s": 2.0, "sweep_interval_s": 0.2})
    ingest = start_ingest(plain)  # history from before notifications were configured
    peer.publish("vesper/old/status/alerts", CRITICAL)
    peer.wait_events(1, source_id="old")
    ingest.stop()
    config = with_notify(plain, {"hook": webhook.url}, [rule("hook")])
    ingest = start_ingest(config)
    peer.publish("vesper/gone/status/heartbeat", {})
    peer.publish("vesper/new/status/alerts", CRITICAL)
    webhook.wait(lambda h: any("offline" in t for t in h.titles()), TIMEOUT, "the outage of gone")
    assert not any("old: Audio" in m["message"] for m in webhook.messages)  # history is not replayed
    told = len(webhook.messages)
    assert ingest.stop() == 0
    start_ingest(config)  # a clean restart: alerts still active, a device still offline
    peer.publish("vesper/marker/status/alerts", CRITICAL)
    webhook.wait(lambda h: any("marker" in m["message"] for m in h.messages), TIMEOUT, "the marker")
    wait_for(lambda: store.device(read_db(), "marker") is not None, TIMEOUT, "marker stored")
    later = webhook.messages[told:]
    assert [m["title"] for m in later] == ["Vesper: 1 critical alert"] and "marker" in later[0]["message"]
