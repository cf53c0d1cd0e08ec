"""SSE framing (pure), the doorbell's decoding (pure), the hub's rules on a real store, and the stream view."""

from __future__ import annotations

import gc
import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from shared import store
from shared.events import dumps
from vesper_web import sse
from vesper_web import stream as stream_view
from vesper_web.bridge import announced_ids
from vesper_web.hub import Hub, Subscriber
from vesper_web.ring import RESTART_ID

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


# --- the doorbell's decoding (vesper_web/bridge.py) ------------------------------------------

FORM = {"ts": "2023-11-14T22:13:20.000Z", "type": "alert", "severity": "critical", "source_id": "x", "payload": {}}


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in FORM.items() if k != key}


@pytest.mark.parametrize(
    "body",
    [
        b"not json", b"\xff\xfe\x00", b"", b"[" * 100_000, b'"x"', b"null", b"[]", b"{}", b"[1, 2]",
        b'{"id":42,"source_id":[1]}', {**FORM, "id": "7"}, {**FORM, "id": 4.0}, {**FORM, "id": True},
        {**FORM, "id": None}, {**FORM, "id": 0}, {**FORM, "id": -5}, {**FORM, "id": 2**63}, {**FORM, "id": 10**30},
        {**FORM, "id": 7, "source_id": [1]}, {**FORM, "id": 7, "payload": []}, {**FORM, "id": 7, "ts": 1.5},
        {**FORM, "id": 7, "severity": None}, {**_without("type"), "id": 7}, {**_without("payload"), "id": 7},
        [{**FORM, "id": 7}, {**FORM, "id": "8"}], [{**FORM, "id": 7}, 8],
    ],
    ids=lambda body: repr(body)[:60],
)
def test_what_is_not_a_well_formed_event_or_batch_announces_nothing(body: bytes | Any) -> None:
    gc.collect()  # an earlier test's objects finalised here, not deep inside the 100,000-deep parse's recursion
    assert announced_ids(body if isinstance(body, bytes) else dumps(body).encode()) is None


def test_a_well_formed_event_or_batch_announces_its_ids() -> None:
    assert announced_ids(dumps({**FORM, "id": 7})) == [7]
    assert announced_ids(dumps([{**FORM, "id": 9}, {**FORM, "id": 8, "more": 1}]).encode()) == [9, 8]
    assert announced_ids(dumps({**FORM, "id": 2**63 - 1})) == [2**63 - 1]


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


def _insert(conn: Any, device: str, message: str, ts: float = T0) -> int:
    payload = {"subsystem": "Audio", "state": "WARNING", "message": message, "previous_state": None}
    return store.insert_event(conn, ts, "alert", "warning", device, dumps(payload))


def _add(db: Path, device: str = "bell-1", message: str = "new", ts: float = T0) -> dict[str, Any]:
    """Commit one more event and return it in wire form, as the ingest would publish it."""
    conn = store.open_store(db)
    with store.write(conn):
        event_id = _insert(conn, device, message, ts)
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


def receive(hub: Hub, payload: bytes) -> int:
    """What the bridge does with a message on the published topic: decode it, ring the hub's doorbell."""
    return hub.doorbell(announced_ids(payload))


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
    assert receive(hub, _published(four)) == 1
    assert receive(hub, _published(four)) == 0
    assert receive(hub, _published(four, five)) == 1
    assert receive(hub, _published(*_stored(db, 2, 3))) == 0
    assert _drain(sub) == [4, 5] and hub.last_id == 5 and hub.filled == 0


def test_frame_is_built_once_and_matches_the_published_json(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(4)
    subs = [hub.subscribe() for _ in range(3)]
    five = _stored(db, 5)[0]
    receive(hub, _published(five))
    items = [s.get_nowait() for s in subs if s is not None]
    assert all(item is items[0] for item in items)  # one tuple, one bytes object, shared
    assert items[0] == (5, "bell-2", f"id: 5\ndata: {dumps(five)}\n\n".encode())


def test_hole_is_filled_from_sqlite_in_order(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(1)
    sub = hub.subscribe()
    assert sub is not None
    assert receive(hub, _published(_stored(db, 5)[0])) == 4
    assert _drain(sub) == [2, 3, 4, 5] and hub.filled == 3
    assert receive(hub, _published(*_stored(db, 3, 4))) == 0  # the late MQTT copies are duplicates now


def test_hole_inside_an_array_is_filled(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(0)
    sub = hub.subscribe()
    assert sub is not None
    receive(hub, _published(*_stored(db, 1, 2, 5)))
    assert _drain(sub) == [1, 2, 3, 4, 5]


def test_resync_after_reconnect_reads_what_was_missed(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(2)
    sub = hub.subscribe()
    assert sub is not None
    assert hub.resync() == 3 and _drain(sub) == [3, 4, 5]
    assert hub.resync() == 0
    six = _add(db)
    assert hub.resync() == 1 and receive(hub, _published(six)) == 0 and _drain(sub) == [6]


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
    assert receive(hub, _published(nine)) == 1 and hub.last_id == 9 and _drain(sub) == [9]


def test_malformed_messages_are_counted_and_move_nothing(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(3)
    sub = hub.subscribe()
    assert sub is not None
    for payload in [b"not json", b'{"id":42,"source_id":[1]}', b'{"id": 4}', b"[" * 100_000, b"[1, 2]", b"{}"]:
        assert receive(hub, payload) == 0
    assert hub.last_id == 3 and hub.bad == hub.malformed == 6 and _drain(sub) == []
    assert receive(hub, _published(_stored(db, 4)[0])) == 1 and _drain(sub) == [4]  # the real one with that id


def test_a_forged_event_is_never_shown_the_stored_one_with_its_id_is(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(3)
    sub = hub.subscribe()
    assert sub is not None
    four, five = _stored(db, 4, 5)
    forged = {**four, "severity": "critical", "source_id": "bell-1", "payload": {"message": "forged"}}
    assert receive(hub, _published(forged)) == 1 and hub.bad == 0
    assert sub.get_nowait() == (4, "bell-2", sse.event(4, dumps(four)))  # the stored text, as it is
    assert receive(hub, _published(four)) == 0  # the real doorbell comes second: a repeat
    assert receive(hub, _published({**five, "payload": {"message": "forged"}}, five)) == 1
    assert sub.get_nowait() == (5, "bell-2", sse.event(5, dumps(five)))


def test_an_id_the_store_does_not_hold_moves_nothing(db: Path) -> None:
    """The issue's attack: the next id (or one far ahead) forged before the real event: the real one is delivered."""
    hub = Hub(db, 100, 10)
    hub.start(5)
    sub = hub.subscribe()
    assert sub is not None
    for forged_id in (6, 7, 2**62, 2**63 - 1):
        assert receive(hub, _published({**FORM, "id": forged_id})) == 0
    assert hub.last_id == 5 and hub.bad == 4 and hub.malformed == 0 and _drain(sub) == []
    six = _add(db, "bell-1", "the real alert")
    assert receive(hub, _published(six)) == 1
    assert sub.get_nowait() == (6, "bell-1", sse.event(6, dumps(six))) and hub.last_id == 6


def test_a_forged_id_ahead_delivers_only_what_the_store_holds(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(3)
    sub = hub.subscribe()
    assert sub is not None
    assert receive(hub, _published({**FORM, "id": 2**62})) == 2 and hub.bad == 1
    assert _drain(sub) == [4, 5] and hub.last_id == 5
    assert receive(hub, _published(_add(db))) == 1 and _drain(sub) == [6]


def recreate(db: Path | str) -> None:
    """The database made anew, its ids from 1 again (an operator deleted or restored it)."""
    if str(db).startswith("postgresql://"):
        with psycopg.connect(str(db), autocommit=True) as admin:
            admin.execute("DROP SCHEMA public CASCADE")
            admin.execute("CREATE SCHEMA public")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    store.open_store(db).close()


def test_a_recreated_database_is_read_from_its_start(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub(db, 100, 10)
    hub.start(0, now=T0 - 1)
    sub = hub.subscribe()
    assert sub is not None
    assert hub.resync() == 5 and _drain(sub) == [1, 2, 3, 4, 5]
    recreate(db)
    one, two = _add(db, "bell-9", "anew", ts=T0 + 60), _add(db, "bell-9", "again", ts=T0 + 61)
    assert receive(hub, _published(one)) == 1 and _drain(sub) == [RESTART_ID, 1] and hub.last_id == 1
    assert receive(hub, _published(one)) == 0 and hub.resync() == 1 and _drain(sub) == [2]
    assert receive(hub, _published(two)) == 0 and hub.bad == 0
    assert caplog.text.count("event ids went backwards") == 1


def test_a_restored_database_goes_on_after_its_own_history(db: Path) -> None:
    hub = Hub(db, 100, 10)
    hub.start(5, now=T0)
    sub = hub.subscribe()
    assert sub is not None
    for i in range(3):
        assert receive(hub, _published(_add(db, ts=T0 + 10 + i))) == 1
    assert _drain(sub) == [6, 7, 8]
    recreate(db)  # restored from a backup of events 1-5, then one new event
    conn = store.open_store(db)
    with store.write(conn):
        for i in range(5):
            _insert(conn, "bell-1", f"m{i + 1}")
    conn.close()
    assert hub.resync() == 0 and _drain(sub) == [RESTART_ID] and hub.last_id == 5
    six = _add(db, "bell-1", "after the restore", ts=T0 + 60)
    assert receive(hub, _published(six)) == 1 and _drain(sub) == [6]


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
        receive(hub, _published(event))
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
    receive(app_hub, _published(six))
    receive(app_hub, _published(*_stored(db, 4, 5)))  # late duplicates change nothing
    assert [e["id"] for e in reader.events(4)] == [3, 4, 5, 6]
    seven = _add(db, "bell-2")
    receive(app_hub, _published(seven))
    assert reader.events(1) == [seven]
    response.close()


@STREAM_WEB
def test_last_event_id_query_argument_and_device_filter(app: Flask, db: Path, app_hub: Hub) -> None:
    response, reader = _open(app, "/events/stream?last_event_id=0&device=bell-2")
    assert reader.message().startswith(b"retry:")
    assert [e["id"] for e in reader.events(2)] == [4, 5]
    receive(app_hub, _published(_add(db, "bell-1"), _add(db, "bell-2")))
    assert [(e["id"], e["source_id"]) for e in reader.events(1)] == [(7, "bell-2")]
    response.close()


@STREAM_WEB
def test_without_last_event_id_starts_live(app: Flask, db: Path, app_hub: Hub) -> None:
    response, reader = _open(app, "/events/stream")
    reader.message()
    receive(app_hub, _published(_add(db)))
    assert [e["id"] for e in reader.events(1)] == [6]
    response.close()


@STREAM_WEB
def test_a_stream_goes_on_across_a_recreated_database(app: Flask, db: Path, app_hub: Hub) -> None:
    response, reader = _open(app, "/events/stream")
    reader.message()
    receive(app_hub, _published(_add(db, ts=time.time())))
    assert [e["id"] for e in reader.events(1)] == [6]
    recreate(db)
    one = _add(db, "bell-2", "anew", ts=time.time() + 1)
    receive(app_hub, _published(one))
    assert reader.events(1) == [one]  # id 1, after 6: the stream does not skip it as already sent
    response.close()


def test_unsent_skips_what_was_sent_until_ids_start_again() -> None:
    items = [(i, "d", str(i).encode()) for i in (3, 4, 5, RESTART_ID, 1, 2)]
    assert stream_view._unsent(items, 4) == ([b"5", b"0", b"1", b"2"], 2)
    assert stream_view._unsent(items[:3], 9) == ([], 9)


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
