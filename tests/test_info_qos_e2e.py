"""Info at the right QoS (§16): a QoS 1 info sent while the ingest is down waits in its session, then is stored."""

from __future__ import annotations

from shared import store
from shared.topics import Topics
from tests.support import wait_for

PLAYBACK = {"type": "playback_started", "payload": {"melody_uid": "QOS1-WHILE-DOWN"}}


def test_qos1_info_sent_while_the_ingest_restarts_is_stored(make_config, start_ingest, peer, read_db):
    cfg = make_config()
    first = start_ingest(cfg)  # its persistent session now holds the subscriptions
    peer.publish("vesper/bell-q/status/heartbeat", {})
    wait_for(lambda: store.device(read_db(), "bell-q"), what="the ingest to store bell-q")
    assert first.stop() == 0  # a clean disconnect: the broker keeps the session (clean_session=False)

    peer.publish("vesper/bell-q/status/info", PLAYBACK, qos=1)  # returns once the broker has it
    start_ingest(cfg)

    def stored() -> list[dict]:
        return [e for e in store.events_after(read_db(), 0, device="bell-q") if e["type"] == "playback_started"]

    events = wait_for(stored, 15, "the info published while the ingest was down to be stored")
    assert [e["payload"] for e in events] == [{"melody_uid": "QOS1-WHILE-DOWN"}]
    assert store.device(read_db(), "bell-q")["playback"] == {"active": True, "melody_uid": "QOS1-WHILE-DOWN"}


def test_every_kind_is_subscribed_at_qos_1():
    """The broker delivers at the lower of the two QoS: a QoS 0 publisher's info is unchanged."""
    assert Topics("vesper").subscriptions() == [
        ("vesper/+/status/heartbeat", 1),
        ("vesper/+/status/alerts", 1),
        ("vesper/+/status/info", 1),
    ]
