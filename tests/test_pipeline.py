"""The pure parts of SPEC §11: shared/pipeline.py's verdict and the ingest's self-report, time passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared import store
from shared.pipeline import Bridge, assess, duration, parse_state, unreadable
from vesper_ingest.selfreport import SelfReport

NOW = 1_700_000_000.0
STALE = 10.0


def state(**overrides: Any) -> dict[str, Any]:
    """An ingest that swept a moment ago and is connected."""
    well = {"last_sweep_at": NOW - 1, "broker_connected": True, "connected_since": NOW - 600, "name": "h:1"}
    return {**well, **overrides}


@pytest.mark.parametrize(
    ("recorded", "bridge", "ok", "words"),
    [
        (state(), Bridge(True, NOW - 60), True, []),
        (state(), None, True, []),
        (state(last_sweep_at=NOW - 47), Bridge(True, NOW - 60), False, ["has not reported for 47 s"]),
        (state(last_sweep_at=NOW - STALE), Bridge(True, NOW), True, []),  # at the limit: not yet
        (
            state(broker_connected=False, disconnected_since=NOW - 180, reason="lost the broker: keepalive"),
            Bridge(True, NOW),
            False,
            ["not connected to the broker since", "keepalive"],
        ),
        (state(), Bridge(False, NOW - 5), True, []),  # a bridge reconnecting briefly is not a problem yet
        (state(), Bridge(False, NOW - 30), False, ["This web server is not connected to the broker"]),
        (None, Bridge(True, NOW), False, ["never reported"]),
    ],
    ids=["well", "no-bridge", "stale", "at-limit", "broker-lost", "bridge-brief", "bridge-down", "never"],
)
def test_assess(recorded: dict[str, Any] | None, bridge: Bridge | None, ok: bool, words: list[str]) -> None:
    found = assess(recorded, bridge, NOW, STALE)
    assert found["ok"] is ok and bool(found["problems"]) is not ok
    text = " ".join(found["problems"])
    assert all(word in text for word in words), text


def test_data_as_of_is_when_the_ingest_last_saw() -> None:
    lost = assess(state(broker_connected=False, disconnected_since=NOW - 180), None, NOW, STALE)
    assert lost["data_as_of"] == lost["liveness_as_of"] == "2023-11-14T22:10:20.000Z"
    stale = assess(state(last_sweep_at=NOW - 47), None, NOW, STALE)
    assert stale["liveness_as_of"] == "2023-11-14T22:12:33.000Z"
    well = assess(state(), Bridge(False, NOW - 60), NOW, STALE)
    assert well["liveness_as_of"] is None and not well["ok"]  # only the stream is paused: liveness is current


@pytest.mark.parametrize("raw", [None, "", "not json", "[]", '{"last_sweep_at": "x"}'])
def test_a_state_that_is_not_ours_is_none(raw: str | None) -> None:
    assert parse_state(raw) is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (47, "47 s"), (180, "3 min"), (7500, "2 h 5 min")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_one_interruption_after_the_deadline_and_one_resumption() -> None:
    report = SelfReport("vesper-ingest", 30.0, NOW, 0.0)
    assert report.events(NOW + 29, 29.0) == []  # blind from the start, but not for long enough
    [interrupted] = report.events(NOW + 30, 30.0)
    assert interrupted.type == "monitoring_interrupted" and interrupted.source_id == "vesper-ingest"
    assert report.events(NOW + 300, 300.0) == []  # once
    report.connected(NOW + 301)
    [resumed] = report.events(NOW + 302, 302.0)
    assert resumed.type == "monitoring_resumed" and resumed.payload["down_s"] == 302
    assert report.events(NOW + 303, 303.0) == []


def test_a_short_outage_says_nothing_and_the_deadline_is_monotonic() -> None:
    report = SelfReport("vesper-ingest", 30.0, NOW, 0.0)
    report.connected(NOW)
    report.disconnected(NOW + 10, 10.0, "lost the broker")
    assert report.events(NOW + 10_000, 39.0) == []  # the wall clock stepped; only 29 s have passed
    report.connected(NOW + 10_001)
    assert report.events(NOW + 10_002, 41.0) == []
    assert report.state(NOW)["broker_connected"] is True


def test_an_interruption_a_previous_process_announced_is_resumed_not_repeated(db_path: Path) -> None:
    writer = store.Writer(db_path)
    try:
        with writer.transaction() as conn:
            SelfReport("vesper-ingest", 30.0, NOW - 100, 0.0).record(conn, NOW - 60, 40.0)  # the earlier process
        report = SelfReport("vesper-ingest", 30.0, NOW, 0.0)
        report.load(writer.conn)
    finally:
        writer.close()
    assert report.events(NOW + 60, 60.0) == []  # still blind: no second announcement
    report.connected(NOW + 61)
    [resumed] = report.events(NOW + 62, 62.0)
    assert resumed.payload["down_s"] == 162 and resumed.payload["since"] == "2023-11-14T22:11:40.000Z"


def test_a_database_that_does_not_answer_is_a_problem_said_plainly() -> None:
    """During a failover no primary answers: /api/status says so (and /healthz/pipeline is 503), never a 500."""
    found = unreadable("connection failed:\n  server closed the connection", None, NOW, STALE)
    assert found["ok"] is False and found["ingest"] is None
    assert found["problems"] == [
        "The database does not answer (connection failed: server closed the connection): nothing newer can be shown."
    ]
