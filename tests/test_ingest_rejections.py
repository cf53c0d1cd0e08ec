"""The ingest rejects hostile input (counted, logged once, good input still applied) and a second copy."""

from __future__ import annotations

from shared import store
from tests.support import run_ingest_to_exit, wait_for

BAD = [
    ("vesper/d-good/status/alerts", b"\xff\xfe\x00garbage"),  # not_utf8
    ("vesper/d-good/status/alerts", b"{nope"),  # not_json
    ("vesper/d-good/status/alerts", b"[1,2,3]"),  # not_object
    ("vesper/d-good/status/alerts", b'{"state": "WARNING"}'),  # missing_field
    ("vesper/d-good/status/alerts", b'{"subsystem": "A\\u200b", "state": "WARNING", "x": 1}'),  # bad_value: subsystem
    ("vesper/d-good/status/alerts", b'{"subsystem": 1, "state": "WARNING"}'),  # bad_type
    ("vesper/d-good/status/alerts", b'{"subsystem": "A", "state": "MELTING"}'),  # bad_value
    ("vesper/d-good/status/info", b'{"type": 42}'),  # bad_type
    ("vesper/d-good/status/alerts", b"x" * 1_000_000),  # oversized (1 MB)
    ("vesper/bad id/status/alerts", b'{"subsystem": "A", "state": "WARNING"}'),  # bad_device_id
    ("vesper/" + "z" * 65 + "/status/alerts", b'{"subsystem": "A", "state": "WARNING"}'),  # bad_device_id
    ("vesper/d\u00e9v/status/info", b'{"type": "x"}'),  # bad_device_id
    ("vesper/<img src=x>/status/alerts", b'{"subsystem": "A", "state": "WARNING"}'),  # bad_device_id
]
EXPECTED_REJECTIONS = {
    "rejected.not_utf8": 1,
    "rejected.not_json": 1,
    "rejected.not_object": 1,
    "rejected.missing_field": 1,
    "rejected.bad_type": 2,
    "rejected.bad_value": 2,
    "rejected.oversized": 1,
    "rejected.bad_device_id": 4,
}


def test_bad_input_is_counted_and_good_input_applied(make_config, start_ingest, peer, read_db):
    ingest = start_ingest(make_config())
    rounds = 3
    good = 0
    for r in range(rounds):
        for i, (topic, payload) in enumerate(BAD):
            peer.publish(topic, payload, qos=1)
            body = {"subsystem": f"S{i}", "state": "WARNING" if r % 2 == 0 else "CRITICAL", "msg": f"r{r}"}
            peer.publish("vesper/d-good/status/alerts", body)
            good += 1
    events = peer.wait_events(good, type="alert", timeout=30)
    assert len(events) == good
    rows = store.alerts(read_db(), "d-good")
    assert sorted((a["subsystem"], a["state"], a["message"]) for a in rows) == sorted(
        (f"S{i}", "WARNING", "r2") for i in range(len(BAD))
    )
    expected = {name: n * rounds for name, n in EXPECTED_REJECTIONS.items()}

    def counted() -> bool:
        c = store.counters(read_db())
        return {k: v for k, v in c.items() if k.startswith("rejected.")} == expected

    wait_for(counted, 10, f"rejection counters {expected}; have {store.counters(read_db())}")
    assert ingest.proc.poll() is None, "the ingest died"
    assert "rejected message: not_json" in ingest.output()
    # Rate limited: three rounds of the same reason inside 10 s are logged once.
    assert ingest.output().count("rejected message: not_json") == 1
    assert store.device(read_db(), "bad id") is None


def test_second_ingest_on_same_database_refuses(make_config, start_ingest):
    cfg = make_config()
    start_ingest(cfg)
    out = run_ingest_to_exit(cfg)
    assert out.returncode == 3
    assert "another vesper_ingest" in out.stdout and "already running" in out.stdout
