"""Fault injection with the web in the loop: Mosquitto, the ingest and gunicorn (gevent worker), all real.

The issue's faults 3, 6, 7, 8, 9 and 10 (the ingest-only ones are in test_ingest_faults.py). Stream
clients are plain sockets in threads that resume with Last-Event-ID the way a browser's EventSource
does; every event id they see is kept, so "exactly once" is checked, not assumed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from shared import config as config_mod
from shared import store
from tests.support import Peer, Process, wait_for
from vesper_sim.sequences import SUBSYSTEMS, Transition, implied_events, implied_state, transitions

CORPUS = Path(__file__).with_name("corpus") / "hostile.jsonl"
WEB = {"keepalive_s": 0.5}
TIMEOUT = 60.0
MiB = 1 << 20


# --- helpers ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(data: bytes | str) -> Any:
    """json.loads that refuses NaN and Infinity, as a browser's JSON.parse does."""
    return json.loads(data, parse_constant=_reject_constant)


class Reader:
    """An SSE client in a thread that keeps every event id and resumes with Last-Event-ID when cut off."""

    def __init__(self, bind: str, resume: bool = True) -> None:
        host, _, port = bind.rpartition(":")
        self.address = (host, int(port))
        self.resume = resume
        self.ids: list[int] = []
        self.sessions = 0  # streams that answered 200
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def last(self) -> int:
        return self.ids[-1] if self.ids else 0

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self._session()
            if not self.resume:
                return
            self._stop.wait(0.1)  # the reconnect delay (an EventSource waits `retry:`)

    def _session(self) -> None:
        with socket.create_connection(self.address, timeout=TIMEOUT) as sock:
            self._sock = sock
            resume = f"Last-Event-ID: {self.last}\r\n" if self.ids else ""
            # HTTP/1.0: the body comes unchunked and ends with the connection.
            host = f"Host: {self.address[0]}:{self.address[1]}\r\n"
            sock.sendall(f"GET /events/stream HTTP/1.0\r\n{host}Accept: text/event-stream\r\n{resume}\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            status = int(head.split(b" ", 2)[1])
            self.statuses.append(status)
            if status != 200:
                return
            self.sessions += 1
            while not self._stop.is_set():
                *messages, buf = (buf + sock.recv(1 << 16) or b"\0").split(b"\n\n")
                if buf == b"\0":
                    return  # the server ended the stream
                for message in messages:
                    self._message(message)

    def _message(self, message: bytes) -> None:
        lines = message.split(b"\n")
        ids = [line[4:] for line in lines if line.startswith(b"id: ")]
        if not ids:
            return  # the connected message, retry:, keepalive comments
        data = b"\n".join(line[6:] for line in lines if line.startswith(b"data: "))
        try:
            event = strict_json(data)
        except (ValueError, RecursionError) as exc:
            self.errors.append(f"event {ids[0]!r}: {exc}")
            return
        if event["id"] != int(ids[0]):
            self.errors.append(f"id line {ids[0]!r} for event {event['id']}")
        self.ids.append(event["id"])

    def close(self) -> None:
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(10)

    def duplicates(self) -> int:
        return len(self.ids) - len(set(self.ids))


def get(bind: str, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """Status and body of a GET (errors included)."""
    try:
        with urllib.request.urlopen(f"http://{bind}{path}", timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def get_json(bind: str, path: str) -> Any:
    status, body = get(bind, path)
    assert status == 200, (path, status, body[:500])
    return strict_json(body)


def metrics(bind: str) -> dict[str, float]:
    """/metrics as {'name{labels}': value}."""
    status, body = get(bind, "/metrics")
    assert status == 200, body
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def bridge_connected(bind: str) -> bool:
    status, body = get(bind, "/healthz", timeout=5)
    return status == 200 and json.loads(body)["bridge"]["connected"]


def worker_pids(web: Process) -> list[int]:
    """The gunicorn worker processes (children of the master we started)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == web.proc.pid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def web_up(make_config, start_ingest, start_web, **web: Any) -> tuple[Path, Process, Process, str]:
    """Ingest and web running, the bridge connected: (config, ingest, web, host:port)."""
    cfg = make_config(web={**WEB, **web})
    ingest = start_ingest(cfg)
    proc = start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    wait_for(lambda: bridge_connected(bind), TIMEOUT, "the bridge to connect")
    return cfg, ingest, proc, bind


def publish_all(peer: Peer, seq: list[Transition]) -> None:
    """Publish alert transitions at QoS 1 without waiting for each (paho keeps the order)."""
    for device, body in seq:
        peer.client.publish(f"vesper/{device}/status/alerts", json.dumps(body), qos=1)


def rotating(n: int, devices: int, seed: int) -> list[Transition]:
    """Transitions whose (device, subsystem) repeats only every devices*3 messages.

    A device that loses its broker re-sends its unacknowledged window (at-least-once): with no key
    twice in that window, a re-sent message only repeats the current state and changes nothing.
    """
    rng = random.Random(seed)
    out: list[Transition] = []
    for i in range(n):
        state = rng.choice(("WARNING", "CRITICAL", "FAILED", "CLEARED", "CLEARED"))
        body = {"subsystem": SUBSYSTEMS[(i // devices) % len(SUBSYSTEMS)], "state": state}
        if body["state"] != "CLEARED":
            body["msg"] = f"r{i}"
        out.append((f"dev-{i % devices:04d}", body))
    return out


def alert_events(conn) -> list[tuple[str, str, str, str | None]]:
    return [
        (e["type"], e["source_id"], e["payload"]["subsystem"], e["payload"].get("message"))
        for e in store.events_after(conn, 0, limit=1_000_000)
        if e["type"] in ("alert", "alert_cleared")
    ]


def stored_ids(read_db) -> list[int]:
    return store.event_ids(read_db())


def wait_readers(readers: list[Reader], upto: int, what: str, timeout: float = TIMEOUT) -> None:
    wait_for(lambda: all(r.last >= upto for r in readers), timeout, f"{what}: every reader up to id {upto}")


def bad_lines(*procs: Process, words: tuple[str, ...] = ("database is locked", "Traceback")) -> list[str]:
    return [line for p in procs for line in p.output().splitlines() if any(w in line for w in words)]


# --- 3: broker restarted during a burst -----------------------------------------------------


def test_broker_restart_during_burst_loses_nothing(broker, make_config, start_ingest, start_web, read_db):
    _, ingest, web, bind = web_up(make_config, start_ingest, start_web)
    readers = [Reader(bind) for _ in range(3)]
    wait_for(lambda: all(r.sessions == 1 for r in readers), TIMEOUT, "three stream clients")
    seq = rotating(10_000, 1_000, seed=3)
    device = Peer(broker.port)
    device.client.reconnect_delay_set(0.1, 0.5)
    try:
        publish_all(device, seq[:6_000])
        wait_for(lambda: store.last_event_id(read_db()) > 1_000, TIMEOUT, "the ingest to be mid-burst")
        broker.stop()  # SIGTERM: mosquitto saves its persistence and exits
        down_at = store.last_event_id(read_db())
        publish_all(device, seq[6_000:])  # the device keeps going; paho queues while the broker is away
        time.sleep(2.0)  # the outage
        broker.start()
        back, back_after = time.monotonic(), {}

        def both_back() -> bool:
            if "bridge" not in back_after and bridge_connected(bind):
                back_after["bridge"] = time.monotonic() - back
            if "ingest" not in back_after and ingest.output().count("connected to") >= 2:
                back_after["ingest"] = time.monotonic() - back
            return len(back_after) == 2

        wait_for(both_back, TIMEOUT, "the ingest and the bridge to reconnect")
        expected = implied_state(seq)
        wait_for(lambda: store.all_alerts(read_db()) == expected, 120, "the active-alert table to match")
    finally:
        device.close()
    conn = read_db()
    events, want = alert_events(conn), implied_events(seq)
    assert sorted(events, key=str) == sorted(want, key=str), f"{len(events)} events stored, {len(want)} implied"
    ids = stored_ids(read_db)
    wait_readers(readers, ids[-1], "after the restart")
    for r in readers:
        r.close()
    got = [len(set(r.ids) & set(ids)) for r in readers]
    dups = sum(r.duplicates() for r in readers)
    wait_for(lambda: metrics(bind).get("vesper_ingest_events_published_total", 0) >= len(ids), TIMEOUT,
             "the ingest's counters to be saved")  # fmt: skip
    m = Counter(metrics(bind))
    figure = (
        f"broker down 2.0 s at event {down_at:,} of {len(ids):,}: {len(seq):,} of {len(seq):,} transitions applied,"
        f" 0 lost, each event once; 3 stream clients got {min(got):,} of {len(ids):,} events, {dups} duplicates;"
        f" ingest back in {back_after['ingest']:.1f} s"
        f" ({m['vesper_ingest_messages_redelivered_total']:.0f} redeliveries recognised,"
        f" {m['vesper_ingest_events_republished_total']:.0f} events republished,"
        f" {m['vesper_ingest_events_published_late_total']:.0f} published late),"
        f" bridge back in {back_after['bridge']:.1f} s"
        f" ({m['vesper_web_events_filled_total']:.0f} events filled from SQLite)"
    )
    assert all(r.ids == ids and not r.errors for r in readers) and dups == 0, figure
    assert store.integrity_ok(conn), figure
    assert m["vesper_web_bridge_reconnects_total"] >= 1, figure
    assert not bad_lines(ingest, web), bad_lines(ingest, web)
    print(f"faults/3: {figure}")


# --- 6: web worker killed with stream clients connected -------------------------------------


def test_web_worker_killed_clients_resume_exactly_once(make_config, start_ingest, start_web, peer, read_db):
    cfg, _, web, bind = web_up(make_config, start_ingest, start_web)
    readers = [Reader(bind) for _ in range(3)]
    wait_for(lambda: all(r.sessions == 1 for r in readers), TIMEOUT, "three stream clients")
    seq = transitions(8_000, 800, seed=6)
    (worker,) = worker_pids(web)

    publish_all(peer, seq[:4_000])
    wait_readers(readers, 500, "before the kill")
    os.kill(worker, signal.SIGKILL)  # mid-stream: the clients' connections are cut
    wait_for(lambda: worker_pids(web) and worker_pids(web) != [worker], TIMEOUT, "gunicorn to start a new worker")
    wait_for(lambda: all(r.sessions >= 2 for r in readers), TIMEOUT, "the clients to resume on the new worker")

    publish_all(peer, seq[4_000:])
    wait_readers(readers, store.last_event_id(read_db()) - 500, "before the restart")
    t0 = time.monotonic()
    assert web.stop(TIMEOUT) == 0  # the whole web process, SIGTERM, as a deploy does
    stop_s = time.monotonic() - t0
    web = start_web(cfg)
    restart_s = time.monotonic() - t0
    wait_for(lambda: all(r.sessions >= 3 for r in readers), TIMEOUT, "the clients to resume on the new process")

    expected = implied_state(seq)
    wait_for(lambda: store.all_alerts(read_db()) == expected, 120, "the active-alert table to match")
    ids = stored_ids(read_db)
    wait_readers(readers, ids[-1], "after the restart")
    for r in readers:
        r.close()
    dups = sum(r.duplicates() for r in readers)
    missed = sum(len(set(ids) - set(r.ids)) for r in readers)
    refused = sum(s != 200 for r in readers for s in r.statuses)
    figure = (
        f"worker SIGKILL, then web SIGTERM (exit 0 in {stop_s:.1f} s) and restart (serving after {restart_s:.1f} s),"
        f" during {len(ids):,} events: 3 clients resumed {min(r.sessions for r in readers) - 1}x each with"
        f" Last-Event-ID ({refused} retries answered 503 by the stopping worker), {missed} missed, {dups} duplicated"
    )
    assert all(r.ids == ids and not r.errors for r in readers), figure
    assert stop_s < 4.0, f"{figure}: streams that reconnected to the stopping worker held it until graceful_timeout"
    print(f"faults/6: {figure}")


# --- 7: a stalled stream client during 10,000 events -----------------------------------------


def test_stalled_client_is_dropped_others_get_everything(make_config, start_ingest, start_web, peer, read_db):
    _, _, web, bind = web_up(make_config, start_ingest, start_web)
    (worker,) = worker_pids(web)
    readers = [Reader(bind, resume=False) for _ in range(3)]
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(readers[0].address)
    stalled.sendall(f"GET /events/stream HTTP/1.0\r\nHost: {bind}\r\n\r\n".encode())  # and never reads again
    wait_for(lambda: metrics(bind)["vesper_web_stream_clients"] == 4, TIMEOUT, "four stream clients")
    # Warm up (first requests, first events) before the baseline.
    publish_all(peer, [("warm-0", {"subsystem": "Audio", "state": "WARNING", "msg": "warm"})])
    wait_readers(readers, 1, "warm-up")
    before = rss_kib(worker)

    # 10,000 events of ~1.1 KB each: far more than the stalled socket's buffers and its queue hold.
    # In steps of half the queue, each read by the three readers before the next: a reader is then
    # never a queue behind, however slow this test process is (a good reader by construction).
    n, step = 10_000, 500
    pad = "p" * 1_000
    seq = [(f"dev-{i % 100:03d}", {"subsystem": "Audio", "state": "WARNING", "msg": f"{i} {pad}"}) for i in range(n)]
    first = store.last_event_id(read_db()) + 1
    for start in range(0, n, step):
        publish_all(peer, seq[start : start + step])
        upto = first + start + step - 1
        try:
            wait_readers(readers, upto, f"events up to {upto - first + 1:,} of {n:,}")
        except AssertionError as exc:
            dropped = metrics(bind)["vesper_web_stream_dropped_total"]
            raise AssertionError(f"{exc}; stream clients dropped: {dropped:.0f}") from None
    assert store.last_event_id(read_db()) == first + n - 1
    after = rss_kib(worker)
    m = metrics(bind)
    stalled.settimeout(TIMEOUT)
    stalled_bytes = 0
    while chunk := stalled.recv(1 << 20):  # the server ended the stalled stream: it drains, then closes
        stalled_bytes += len(chunk)
    stalled.close()
    for r in readers:
        r.close()
    got = [len([i for i in r.ids if i >= first]) for r in readers]
    growth = (after - before) / 1024
    figure = (
        f"{min(got):,} of {n:,} events to 3 clients, {int(m['vesper_web_stream_dropped_total'])} stalled client"
        f" dropped (it got {stalled_bytes / MiB:.1f} MiB before), worker RSS {before / 1024:.0f} -> {after / 1024:.0f}"
        f" MiB ({growth:+.1f} MiB)"
    )
    assert all(r.ids[-n:] == list(range(first, first + n)) and not r.errors for r in readers), figure
    assert m["vesper_web_stream_dropped_total"] == 1 and m["vesper_web_stream_clients"] == 3, figure
    assert growth < 50, figure
    print(f"faults/7: {figure}")


# --- 8: more streams than a worker allows -----------------------------------------------------


def test_more_streams_than_allowed_are_refused_api_keeps_answering(make_config, start_ingest, start_web, peer, read_db):
    max_streams = 20
    _, _, _, bind = web_up(make_config, start_ingest, start_web, max_streams=max_streams)
    peer.publish("vesper/bell-8/status/alerts", {"subsystem": "Audio", "state": "WARNING", "msg": "m"})
    readers = [Reader(bind, resume=False) for _ in range(max_streams)]
    wait_for(lambda: sum(r.sessions for r in readers) == max_streams, TIMEOUT, f"{max_streams} streams")
    extra = [get(bind, "/events/stream", timeout=10) for _ in range(5)]

    stop = threading.Event()
    timings: list[float] = []
    failures: list[tuple[str, int]] = []

    def api_client() -> None:
        paths = ["/api/devices", "/api/devices/bell-8/alerts", "/api/events?limit=100", "/healthz", "/metrics"]
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            t0 = time.monotonic()
            status, _ = get(bind, path, timeout=10)
            timings.append(time.monotonic() - t0)
            if status != 200:
                failures.append((path, status))
            i += 1

    clients = [threading.Thread(target=api_client) for _ in range(2)]
    for t in clients:
        t.start()
    seq = transitions(5_000, 500, seed=8)  # the API is asked while every stream is busy
    publish_all(peer, seq)
    try:
        expected = implied_state(seq)  # after bell-8's alert, which sorts first
        wait_for(lambda: store.all_alerts(read_db())[1:] == expected, TIMEOUT, "the transitions applied")
        last = store.last_event_id(read_db())
        wait_readers(readers, last, "the events on every stream")
    finally:
        stop.set()
        for t in clients:
            t.join()
    readers[0].close()
    wait_for(lambda: metrics(bind)["vesper_web_stream_clients"] == max_streams - 1, TIMEOUT, "a slot to free")
    again = Reader(bind, resume=False)
    wait_for(lambda: again.sessions == 1, TIMEOUT, "a stream in the freed slot")
    for r in [*readers[1:], again]:
        r.close()
    timings.sort()
    slowest = timings[-1]
    figure = (
        f"{max_streams} streams served (each got all {last:,} events), {sum(s == 503 for s, _ in extra)} of"
        f" {len(extra)} extra refused with 503, a freed slot taken again; API {len(timings)} requests meanwhile,"
        f" {len(failures)} failed, p50 {timings[len(timings) // 2] * 1000:.0f} ms, max {slowest * 1000:.0f} ms"
    )
    assert all(s == 503 and "too many open streams" in strict_json(body)["error"] for s, body in extra), figure
    assert not failures and slowest < 1.0 and len(timings) >= 20, figure
    print(f"faults/8: {figure}")


# --- 9: database contention -----------------------------------------------------------------


def test_api_reads_during_a_write_burst_never_see_a_locked_database(
    make_config, start_ingest, start_web, peer, read_db
):
    _, ingest, web, bind = web_up(make_config, start_ingest, start_web)
    seq = transitions(14_000, 1_000, seed=9)
    publish_all(peer, seq[:100])
    wait_for(lambda: len(store.devices(read_db())) > 50, TIMEOUT, "devices to read")
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    timings: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            device = f"dev-{rng.randrange(1_000):04d}"
            path = rng.choice(["/api/devices", f"/api/devices/{device}/alerts", f"/api/devices/{device}",
                               "/api/events?limit=1000"])  # fmt: skip
            t0 = time.monotonic()
            status, body = get(bind, path, timeout=30)
            with lock:
                timings.append(time.monotonic() - t0)
                statuses[status] += 1
                if status not in (200, 404):
                    errors.append(f"{path}: {status} {body[:200]!r}")

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        publish_all(peer, seq[100:10_000])  # a burst: large batches
        for i in range(10_000, len(seq), 20):  # then a steady flow: many small write transactions
            publish_all(peer, seq[i : i + 20])
            for device, _ in seq[i : i + 20]:
                peer.client.publish(f"vesper/{device}/status/heartbeat", '{"uptime": 1}', qos=1)
            time.sleep(0.02)  # paces the flow at ~1,000 transitions/s, not waiting for an event
        expected = implied_state(seq)
        wait_for(lambda: store.all_alerts(read_db()) == expected, 120, "the writes to be applied")
    finally:
        writes_s = time.monotonic() - t0
        stop.set()
        for t in threads:
            t.join()
    locked = bad_lines(ingest, web, words=("database is locked", "OperationalError"))
    total = sum(statuses.values())
    timings.sort()
    figure = (
        f"{total:,} API reads from 4 threads during {len(seq):,} transitions and 4,000 heartbeats ({writes_s:.1f} s"
        f" of writes): {statuses[200]:,} ok, {statuses[404]:,} 404 for a device not seen yet, {len(errors)} errors,"
        f" {len(locked)} 'database is locked'; read p99 {timings[int(len(timings) * 0.99)] * 1000:.0f} ms"
    )
    assert not errors and not locked and total > 100, f"{figure}: {errors[:3]} {locked[:3]}"
    print(f"faults/9: {figure}")


# --- 10: poison -----------------------------------------------------------------------------


def corpus() -> list[dict[str, Any]]:
    """The recorded hostile payloads: base64, repeated `repeat` times, then `pad` spaces of JSON whitespace."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    for row in rows:
        row["payload"] = base64.b64decode(row["payload_b64"]) * row.get("repeat", 1) + b" " * row.get("pad", 0)
    return rows


PUBLISHED_GARBAGE = [
    b"not json",
    b"\xff\xfe\x00",
    b"",
    b"[" * 100_000,
    b'[1, "x", null, {}, [], {"id": "7"}, {"id": 1.5}, {"id": null}]',
    b'{"id": 100000000000000000000000000000, "type": "alert", "source_id": "forged"}',
    b'{"id": 4611686018427387904, "type": "alert", "source_id": "forged", "payload": {}}',
    b'[{"id": 9007199254740993, "source_id": "forged"}, {"id": 9007199254740994}]',
    b'{"id": -5, "source_id": "forged"}',
    b'{"id": true, "source_id": "forged"}',
    b'{"id": 0, "source_id": "forged"}',
    b'"' + b"x" * 1_000_000 + b'"',
]


def _served_as_sent(bind: str, row: dict, liveness: dict[str, str]) -> bool:
    """A hostile but valid message was applied: an alert stored exactly as sent, a heartbeat a sign of life."""
    device = row["topic"].split("/")[1]
    if row["topic"].endswith("/alerts"):
        body = json.loads(row["payload"])
        served = json.loads(get(bind, f"/api/devices/{device}/alerts")[1])
        msg = body.get("msg") and body["msg"].replace("\0", "\ufffd")
        msg = msg if not msg or len(msg) <= 1024 else msg[:1023] + "…"  # a long msg is cut, never refused (§11)
        return [(a["subsystem"], a["state"], a["message"]) for a in served] == [
            (body["subsystem"], body["state"], msg)
        ]  # a NUL is kept as U+FFFD (PostgreSQL's text cannot hold it; vesper_ingest/classify.py)
    return not row["topic"].endswith("/heartbeat") or liveness.get(device) == "online"


def _unreadable(bind: str, path: str) -> str | None:
    """What is wrong with a read path's answer (not 200, or JSON a browser cannot parse), or None."""
    status, body = get(bind, path)
    try:
        strict_json(body)
    except (ValueError, RecursionError) as exc:
        return f"{path}: {status} {exc}"
    return None if status == 200 else f"{path}: {status} {body[:200]!r}"


def test_poison_is_counted_and_good_messages_around_it_are_applied(
    make_config, start_ingest, start_web, peer, read_db
):
    _, ingest, web, bind = web_up(make_config, start_ingest, start_web)
    reader = Reader(bind)
    wait_for(lambda: reader.sessions == 1, TIMEOUT, "a stream client")
    rows = corpus()
    good: list[Transition] = []
    for i, row in enumerate(rows):
        before = (f"good-{i % 7}", {"subsystem": "Audio", "state": "WARNING", "msg": f"before {i}"})
        after = (f"good-{i % 7}", {"subsystem": "Motor", "state": "CRITICAL", "msg": f"after {i}"})
        good += [before, after]
        publish_all(peer, [before])
        peer.client.publish(row["topic"], row["payload"], qos=1)
        publish_all(peer, [after])
    wanted = dict(sorted(Counter(row["reason"] for row in rows if row["reason"]).items()))
    total = len(rows) + len(good)

    def counted(prefix: str) -> dict[str, int]:
        """{label value: count} of one labelled family."""
        return {k.split('="')[1][:-2]: int(v) for k, v in metrics(bind).items() if k.startswith(prefix + "{")}

    wait_for(lambda: sum(counted("vesper_ingest_messages_total").values()) == total, TIMEOUT, f"{total} messages")
    expected = implied_state(good)
    wait_for(lambda: [a for a in store.all_alerts(read_db()) if a[0].startswith("good-")] == expected, TIMEOUT,
             "every good message to be applied")  # fmt: skip
    rejected = counted("vesper_ingest_rejected_total")

    # Hostile but valid messages are applied: alerts stored exactly as sent, heartbeats a sign of life.
    status, body = get(bind, "/api/devices")
    liveness = {d["id"]: d["liveness"] for d in json.loads(body)} if status == 200 else {}
    altered = [row["name"] for row in rows if row["reason"] is None and not _served_as_sent(bind, row, liveness)]
    # Every read path still answers, with JSON a browser can parse.
    paths = ["/api/devices", "/api/events?limit=1000", *(f"/api/devices/{d}" for d in liveness)]
    unreadable = [problem for path in paths if (problem := _unreadable(bind, path))]

    # Garbage straight on the published topic: the bridge and the stream live on, the next real event arrives.
    ignored_before = metrics(bind)["vesper_web_published_ignored_total"]
    for payload in PUBLISHED_GARBAGE:
        peer.publish("vesper/console/published", payload)
    floor = store.last_event_id(read_db())
    peer.publish("vesper/after-garbage/status/alerts", {"subsystem": "Audio", "state": "FAILED", "msg": "real"})
    wait_for(lambda: store.last_event_id(read_db()) > floor, TIMEOUT, "the real event to be stored")
    last = store.last_event_id(read_db())
    with contextlib.suppress(AssertionError):  # reported below with everything else
        wait_readers([reader], last, "the real event after the garbage", timeout=10)
    connected = bridge_connected(bind)
    ignored = metrics(bind)["vesper_web_published_ignored_total"] - ignored_before
    reader.close()
    ids = stored_ids(read_db)
    problems = bad_lines(ingest, web, words=("Traceback", "internal_error"))
    figure = (
        f"{len(rows)} hostile payloads ({sum(wanted.values())} bad under {len(wanted)} reasons,"
        f" {len(rows) - sum(wanted.values())} hostile but valid) among {len(good)} good messages: rejections"
        f" {sum(rejected.values())} of {sum(wanted.values())} under the expected reasons, {len(good)} of"
        f" {len(good)} good applied; {len(PUBLISHED_GARBAGE)} garbage messages on the published topic"
        f" ({int(ignored)} counted as ignored), the stream delivered {len(reader.ids)} of {len(ids)} events"
    )
    failed = {
        "unreadable API answers": unreadable,
        "stream events a browser cannot parse": reader.errors,
        "rejections not as expected": [] if rejected == wanted else [f"wanted {wanted}, got {rejected}"],
        "hostile but valid alerts altered": altered,
        "stream ids unlike the stored ones": [] if reader.ids == ids else sorted(set(ids) ^ set(reader.ids))[:20],
        "bridge disconnected": [] if connected else ["yes"],
        "processes dead": [p.output()[-2000:] for p in (ingest, web) if p.proc.poll() is not None],
        "tracebacks": problems[:10],
    }
    assert not any(failed.values()), f"{figure}: {({k: v for k, v in failed.items() if v})}"
    print(f"faults/10: {figure}")


def test_corpus_expects_known_reasons_only() -> None:
    """Every reason the corpus expects is one the classifier can give."""
    from vesper_ingest.classify import REASONS

    rows = corpus()
    assert len(rows) >= 50 and {row["reason"] for row in rows} - {None} <= set(REASONS)
    assert max(len(row["payload"]) for row in rows) >= 1_000_000
