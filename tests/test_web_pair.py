"""Two web processes on one PostgreSQL (§10): a session made on one is accepted by the other, and a stream client
cut from one resumes on the other with Last-Event-ID, no gap and no duplicate."""

from __future__ import annotations

from shared import config as config_mod
from shared import store
from tests.conftest import write_config
from tests.support import wait_for
from tests.test_security_e2e import AUTH, Http
from tests.test_standby import EVERY_CHANGE, alert_events
from tests.test_web_e2e import Stream, get_json
from vesper_sim.sequences import implied_events, transitions

WEB = {"keepalive_s": 0.5}


def two_webs(tmp_path, broker, pg_url, start_ingest, start_web, **sections):
    """An ingest and two web processes, each with its own config directory (no file shared), on one database."""
    configs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        configs.append(write_config(tmp_path / name / "vesper.toml", broker.port, pg_url, web=WEB, **sections))
    start_ingest(configs[0])
    binds = []
    for cfg in configs:
        start_web(cfg)
        binds.append(config_mod.load(cfg).web.bind)
    return binds


def test_a_session_made_on_one_web_is_accepted_by_the_other(tmp_path, broker, pg_url, start_ingest, start_web):
    a, b = two_webs(tmp_path, broker, pg_url, start_ingest, start_web, auth=AUTH)
    on_a = Http(f"http://{a}")
    assert on_a.sign_in().status == 303 and on_a.cookie
    assert Http(f"http://{b}").get("/api/devices").status == 401  # b does check
    on_b = Http(f"http://{b}", cookie=on_a.cookie)
    reply = on_b.get("/api/devices")
    assert reply.status == 200 and reply.json() == []
    assert not (tmp_path / "a" / "session.key").exists() and not (tmp_path / "b" / "session.key").exists()


def published(peer, conn, seq, start: int, end: int) -> None:
    """Publish seq[start:end] and wait until the events the sequence up to `end` implies are stored."""
    for device, body in seq[start:end]:
        peer.publish(f"vesper/{device}/status/alerts", body)
    want = len(implied_events(seq[:end]))
    wait_for(lambda: len(alert_events(conn)) == want, 30, f"the {want} events of {end} transitions to be stored")


def test_a_stream_cut_from_one_web_resumes_on_the_other(tmp_path, broker, pg_url, start_ingest, start_web, peer):
    a, b = two_webs(tmp_path, broker, pg_url, start_ingest, start_web, alerts=EVERY_CHANGE)
    for bind in (a, b):
        wait_for(lambda bind=bind: get_json(bind, "/healthz")["bridge"]["connected"], 30, "the bridges to connect")
    seq = transitions(270, 20, seed=41)
    conn = store.connect(pg_url, readonly=True)
    try:
        first = Stream(a)
        published(peer, conn, seq, 0, 120)
        seen = first.events(60)
        first.close()
        published(peer, conn, seq, 120, 240)  # while the client is away
        again = Stream(b, last_event_id=seen[-1]["id"])
        published(peer, conn, seq, 240, 270)  # and while it catches up
        stored = [e["id"] for e in store.events_after(conn, seen[-1]["id"], limit=1_000)]
    finally:
        conn.close()
    resumed = again.events(len(stored))
    again.close()
    assert [e["id"] for e in resumed] == stored  # every one after the cut, once, in order
    assert len(stored) > 100 and [e["id"] for e in seen] == sorted({e["id"] for e in seen})
