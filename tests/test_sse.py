"""SSE framing (pure), the hub's ordering rules on a real SQLite file, and the stream view."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from shared import store
from shared.events import dumps
from vesper_web import sse
from vesper_web.hub import Hub, Subscriber

T0 = 1_700_000_000.0

# --- the formatter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": "a\nb\r\nc\rd"}, b"data: a\ndata: b\ndata: c\ndata: d\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": "x", "id": 42}, b"id: 42\ndata: x\n\n"),
        ({"data": "x", "event": "alert"}, b"event: alert\ndata: x\n\n"),
        ({"retry": 3000}, b"retry: 3000\n\n"),
        ({"comment": "keepalive"}, b": keepalive\n\n"),
        ({"comment": "two\nlines"}, b": two\n: lines\n\n"),
        ({"data": "d", "id": 7, "retry": 10, "comment": "c"}, b": c\nretry: 10\nid: 7\ndata: d\n\n"),
    ],
)
def test_frame(kwargs: dict[str, Any], expected: bytes) -> None:
    assert sse.frame(**kwargs) == expected


def test_unicode_line_separators_stay_inside_data() -> None:
    # json.dumps(ensure_ascii=False) leaves U+2028 raw; splitting on it would corrupt the JSON.
    data = dumps({"msg": "a\u2028b\x85c\u2029d"})
    framed = sse.frame(data, id=1)
    assert framed.count(b"\n") == 3 and framed.decode("utf-8").split("\n")[1] == f"data: {data}"


@pytest.mark.parametrize("bad", ["1\n2", "1\r", "a\0"])
def test_id_and_event_cannot_break_lines(bad: str) -> None:
    with pytest.raises(ValueError):
        sse.frame("x", id=bad)
    with pytest.raises(ValueError):
        sse.frame("x", event=bad)


def test_fixed_frames() -> None:
    assert sse.connected() == b'retry: 3000\ndata: {"type": "connected"}\n\n'
    assert sse.keepalive() == b": keepalive\n\n"
    assert sse.event(5, '{"id":5}') == b'id: 5\ndata: {"id":5}\n\n'


# --- the hub, on a real store ----------------------------------------------------------------


@pytest.fixture
def db(db_path: Path) -> Path:
    """The app's database (conftest's db_path) with five events, 1-3 from bell-1 and 4-5 from bell-2."""
    conn = store.open_store(db_path)
    with store.write(conn):
        for i in range(5):
            _insert(conn, "bell-1" if i < 3 else "bell-2", f"m{i + 1}")
    conn.close()
    return db_path


def _insert(conn: Any, device: str, message: str) -> int:
    payload = {"subsystem": "Audio", "state": "WARNING", "message": message, "previous_state": None}
    return store.insert_event(conn, T0, "alert", "warning", device, dumps(payload))


def _add(db: Path, device: str = "bell-1", message: str = "new") -> dict[str, Any]:
    """Commit one more event and return it in wire form, as the ingest would publish it."""
    conn = store.open_store(db)
    with store.write(conn):
        event_id = _insert(conn, device, message)
    event = store.events_after(conn, event_id - 1, limit=1)[0]
    conn.close()
    return event


def _stored(db: Path, *ids: int) -> list[dict[str, Any]]:
    conn = store.connect(db, readonly=True)
    events = {e["id"]: e for e in store.events_after(conn, 0)}
    conn.close()
    return [events[i] for i in ids]


def _published(*events: dict[str, Any]) -> bytes:
    body = events[0] if len(events) == 1 else list(events)
    return dumps(body).encode()


def _drain(sub: Subscriber) -> list[int]:
    ids = []
    while True:
        try:
            item = sub.get_nowait()
        except queue.Empty:
            return ids
        assert item is not None
        ids.append(item[0])


def test_duplicates_are_dropped_by_id(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(3)
    sub = hub.subscribe()
    assert sub is not None
    four, five = _stored(db, 4, 5)
    assert hub.receive(_published(four)) == 1
    assert hub.receive(_published(four)) == 0
    assert hub.receive(_published(four, five)) == 1
    assert hub.receive(_published(*_stored(db, 2, 3))) == 0
    assert _drain(sub) == [4, 5] and hub.last_id == 5 and hub.filled == 0


def test_frame_is_built_once_and_matches_the_published_json(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(4)
    subs = [hub.subscribe() for _ in range(3)]
    five = _stored(db, 5)[0]
    hub.receive(_published(five))
    items = [s.get_nowait() for s in subs if s is not None]
    assert all(item is items[0] for item in items)  # one tuple, one bytes object, shared
    assert items[0] == (5, "bell-2", f"id: 5\ndata: {dumps(five)}\n\n".encode())


def test_hole_is_filled_from_sqlite_in_order(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(1)
    sub = hub.subscribe()
    assert sub is not None
    assert hub.receive(_published(_stored(db, 5)[0])) == 4
    assert _drain(sub) == [2, 3, 4, 5] and hub.filled == 3
    assert hub.receive(_published(*_stored(db, 3, 4))) == 0  # the late MQTT copies are duplicates now


def test_hole_inside_an_array_is_filled(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(0)
    sub = hub.subscribe()
    assert sub is not None
    hub.receive(_published(*_stored(db, 1, 2, 5)))
    assert _drain(sub) == [1, 2, 3, 4, 5]


def test_resync_after_reconnect_reads_what_was_missed(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(2)
    sub = hub.subscribe()
    assert sub is not None
    assert hub.resync() == 3 and _drain(sub) == [3, 4, 5]
    assert hub.resync() == 0
    six = _add(db)
    assert hub.resync() == 1 and hub.receive(_published(six)) == 0 and _drain(sub) == [6]


def test_resync_reads_large_backlogs_in_chunks(db: Path) -> None:
    conn = store.open_store(db)
    with store.write(conn):
        for i in range(2500):
            _insert(conn, "bell-3", str(i))
    conn.close()
    hub = Hub(db, 5000, 10)
    hub.start(0)
    sub = hub.subscribe()
    assert sub is not None
    assert hub.resync() == 2505 and _drain(sub) == list(range(1, 2506))


def test_pruned_ids_are_not_waited_for(tmp_path: Path) -> None:
    conn = store.open_store(tmp_path / "pruned.db")
    with store.write(conn):
        for i in range(9):
            store.insert_event(conn, 1.0 if i < 8 else T0, "info", "info", "a", "{}")
        store.prune_events(conn, before=2.0)  # 1-8 are gone; 9 is the only one left
    conn.close()
    hub = Hub(tmp_path / "pruned.db", 10, 10)
    sub = hub.subscribe()
    assert sub is not None
    nine = _stored(tmp_path / "pruned.db", 9)[0]
    assert hub.receive(_published(nine)) == 1 and hub.last_id == 9 and _drain(sub) == [9]


def test_ids_the_database_never_gave_are_ignored(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(3)
    sub = hub.subscribe()
    assert sub is not None
    forged = [{"id": i, "source_id": "forged", "payload": {}} for i in (2**62, 10**30, 9)]
    for event in forged:
        assert hub.receive(_published(event)) == 0
    assert hub.receive(b'[{"id": true}, {"id": 4.0}]') == 0
    assert hub.receive(b"[" * 100_000) == 0  # past the recursion limit: ignored, not raised
    assert hub.last_id == 3 and hub.bad == 5 and _drain(sub) == []
    assert hub.receive(_published(_stored(db, 5)[0])) == 2 and _drain(sub) == [4, 5]  # real ones still flow


def test_device_filter(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(0)
    only_2, every = hub.subscribe("bell-2"), hub.subscribe()
    assert only_2 is not None and every is not None
    hub.resync()
    assert _drain(only_2) == [4, 5] and _drain(every) == [1, 2, 3, 4, 5]


def test_full_queue_drops_only_that_client(db: Path) -> None:
    hub = Hub(db, 2, 10)
    hub.start(0)
    dropped: list[str] = []
    slow = hub.subscribe(on_drop=lambda: dropped.append("slow"))
    fast = hub.subscribe()
    assert slow is not None and fast is not None
    got = []
    for event in _stored(db, 1, 2, 3, 4, 5):
        hub.receive(_published(event))
        got += _drain(fast)
    assert got == [1, 2, 3, 4, 5]
    assert slow.closed and dropped == ["slow"] and hub.dropped == 1 and hub.clients == 1
    assert not fast.closed


def test_max_streams_refuses_more_and_unsubscribe_frees(db: Path) -> None:
    hub = Hub(db, 10, 2)
    first, second = hub.subscribe(), hub.subscribe()
    assert first is not None and second is not None and hub.subscribe() is None
    hub.unsubscribe(first)
    hub.unsubscribe(first)  # idempotent
    assert hub.clients == 1 and hub.subscribe() is not None


def test_bad_payloads_are_ignored(db: Path) -> None:
    hub = Hub(db, 10, 2)
    hub.start(5)
    for payload in [b"not json", b"\xff\xfe", b"[1, 2]", b'{"id": "x"}', b"{}"]:
        assert hub.receive(payload) == 0
    assert hub.last_id == 5 and hub.bad == 5  # none of them carries an event


def test_close_all_wakes_and_closes(db: Path) -> None:
    hub = Hub(db, 10, 5)
    sub = hub.subscribe()
    assert sub is not None
    hub.close_all()
    assert sub.closed and sub.get_nowait() is None and hub.clients == 0
    assert hub.subscribe() is None  # a stopping worker takes no new stream: it would hold the worker up


# --- the stream view through Flask's test client ---------------------------------------------


STREAM_WEB = pytest.mark.web(keepalive_s=0.05, stream_queue_size=50, max_streams=3)  # for conftest's app


@pytest.fixture
def app_hub(db: Path, app: Flask) -> Hub:
    """The app's hub over the five seeded events, begun after them (they are history, not live)."""
    hub: Hub = app.extensions["vesper_hub"]
    hub.start(5)
    return hub


class Reader:
    """Reads SSE messages from a streamed test-client response, one chunk at a time."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def message(self) -> bytes:
        """The next whole message (up to its blank line)."""
        while b"\n\n" not in self.buffer:
            self.buffer += next(self.chunks)
        message, _, self.buffer = self.buffer.partition(b"\n\n")
        return message

    def events(self, n: int) -> list[dict[str, Any]]:
        """The next n events, skipping keepalive comments; their id: line must match the JSON."""
        out: list[dict[str, Any]] = []
        while len(out) < n:
            message = self.message()
            if message.startswith(b":"):
                continue
            id_line, data_line = message.split(b"\n")
            event = json.loads(data_line.removeprefix(b"data: "))
            assert id_line == f"id: {event['id']}".encode()
            out.append(event)
        return out


def _open(app: Flask, url: str, **headers: str) -> tuple[Any, Reader]:
    response = app.test_client().get(url, headers=headers, buffered=False)
    return response, Reader(iter(response.response))


@STREAM_WEB
def test_stream_headers_and_first_message(app: Flask) -> None:
    response, reader = _open(app, "/events/stream")
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert reader.message() == b'retry: 3000\ndata: {"type": "connected"}'
    assert reader.message() == b": keepalive"
    assert app.extensions["vesper_hub"].clients == 1
    response.close()
    assert app.extensions["vesper_hub"].clients == 0


@STREAM_WEB
def test_catch_up_then_live_with_no_gap_and_no_duplicate(app: Flask, db: Path, app_hub: Hub) -> None:
    response, reader = _open(app, "/events/stream", **{"Last-Event-ID": "2"})
    assert reader.message().startswith(b"retry:")  # registered with the hub; catch-up not read yet
    six = _add(db)  # arrives while the catch-up is pending: in SQLite *and* in the live queue
    app_hub.receive(_published(six))
    app_hub.receive(_published(*_stored(db, 4, 5)))  # late duplicates change nothing
    assert [e["id"] for e in reader.events(4)] == [3, 4, 5, 6]
    seven = _add(db, "bell-2")
    app_hub.receive(_published(seven))
    assert reader.events(1) == [seven]
    response.close()


@STREAM_WEB
def test_last_event_id_query_argument_and_device_filter(app: Flask, db: Path, app_hub: Hub) -> None:
    response, reader = _open(app, "/events/stream?last_event_id=0&device=bell-2")
    assert reader.message().startswith(b"retry:")
    assert [e["id"] for e in reader.events(2)] == [4, 5]
    app_hub.receive(_published(_add(db, "bell-1"), _add(db, "bell-2")))
    assert [(e["id"], e["source_id"]) for e in reader.events(1)] == [(7, "bell-2")]
    response.close()


@STREAM_WEB
def test_without_last_event_id_starts_live(app: Flask, db: Path, app_hub: Hub) -> None:
    response, reader = _open(app, "/events/stream")
    reader.message()
    app_hub.receive(_published(_add(db)))
    assert [e["id"] for e in reader.events(1)] == [6]
    response.close()


@STREAM_WEB
@pytest.mark.parametrize("url", ["/events/stream?device=%2B", "/events/stream?last_event_id=abc"])
def test_stream_bad_arguments_are_400_json(app: Flask, url: str) -> None:
    response = app.test_client().get(url)
    assert response.status_code == 400 and "error" in response.get_json()


@STREAM_WEB
def test_stream_over_max_streams_is_503(app: Flask) -> None:
    opened = [_open(app, "/events/stream")[0] for _ in range(3)]
    response = app.test_client().get("/events/stream")
    assert response.status_code == 503 and "error" in response.get_json()
    for r in opened:
        r.close()
    assert app.extensions["vesper_hub"].clients == 0
