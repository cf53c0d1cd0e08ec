"""Mosquitto's own fan-out as a yardstick: N raw MQTT 3.1.1 subscribers with SseLoad's interface.

Each client is a raw socket: CONNECT (clean session, its own client id, no keepalive) and a QoS 0
SUBSCRIBE to the published topic. A full MQTT parser would cost more than the broker's fan-out at
hundreds of thousands of messages/s, so a worker only looks for the bench marker the device put
in each alert's message: one regular expression over the bytes a recv returned (after what was
left of the last one). The event JSON and the MQTT framing around it are never decoded. The
worker processes are sse_load's (epoll loops driven over a pipe), with MQTT's handshake.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bench.mqtt_load import _remaining_length, _string
from bench.sse_load import SseLoad, _Worker, raise_nofile
from shared.topics import Topics

TOPIC = Topics().published
PREFIX = b'"message":"bench '
# A marker counts only with its closing quote: one cut short by a recv never matches, and is kept.
MARK = re.compile(rb'"message":"bench (\d+) (\d+\.\d+)"')
TAIL_MAX = 256  # bytes kept when no marker starts near the end: more than one marker's length
HANDSHAKE = b"\x20\x02\x00\x00" + b"\x90\x03\x00\x01\x00"  # CONNACK accepted, SUBACK of packet 1 granting QoS 0
DISCONNECT = b"\xe0\x00"


def connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with clean session and no keepalive."""
    body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id.encode())
    return b"\x10" + _remaining_length(len(body)) + body


def subscribe_packet(topic: str) -> bytes:
    """A SUBSCRIBE with packet id 1 to one topic at QoS 0."""
    body = struct.pack("!H", 1) + _string(topic.encode()) + b"\x00"
    return b"\x82" + _remaining_length(len(body)) + body


def rest(data: bytes) -> bytes:
    """What to keep for the next recv: a marker cut short, else what follows the last one (at most TAIL_MAX)."""
    start = data.rfind(PREFIX)
    if start < 0:
        return data[-TAIL_MAX:]
    match = MARK.match(data, start)
    if match is None:
        return data[start:]
    return data[match.end() :][-TAIL_MAX:]


class _Subscribers(_Worker):
    """The MQTT clients of one process and their tallies; `in_body` means past CONNACK and SUBACK."""

    READY = "subscribers acknowledged"

    def __init__(self, host: str, port: int, topic: str) -> None:
        super().__init__(host, port, "")
        self.subscribe = subscribe_packet(topic)

    def opening(self) -> bytes:
        """CONNECT and SUBSCRIBE at once: MQTT lets a client subscribe before its CONNACK arrives."""
        return connect_packet(f"bench-sub-{os.getpid()}-{len(self.socks)}") + self.subscribe

    def read(self, fd: int) -> None:
        """Count the markers in what arrived; keep what may start the next one."""
        data = self.receive(fd)
        if data is None:
            return
        now = time.time()
        if not self.in_body[fd]:
            if len(data) < len(HANDSHAKE):
                self.tail[fd] = data
                return
            if not data.startswith(HANDSHAKE):
                raise RuntimeError(f"broker refused a subscriber: {data[: len(HANDSHAKE)]!r}")
            self.in_body[fd] = True
            data = data[len(HANDSHAKE) :]
        self.tail[fd] = rest(data)
        self.tally(fd, MARK.findall(data), now)

    def tally(self, fd: int, found: list[tuple[bytes, bytes]], now: float) -> None:
        """Add one recv's markers to a client's count, order check and latencies."""
        last = self.last[fd]
        for seq_b, ts_b in found:
            seq = int(seq_b)
            if seq <= last:
                self.disorder[fd] += 1
            last = seq
            self.latencies.append(now - float(ts_b))
        self.last[fd] = last
        self.count[fd] += len(found)

    def close(self) -> None:
        """DISCONNECT every client (as far as its socket takes it), then close."""
        for sock in self.socks.values():
            with contextlib.suppress(OSError):
                sock.send(DISCONNECT)
        super().close()


def _serve(pipe: Connection, host: str, port: int, topic: str) -> None:
    """A worker process: obey the parent's commands (sse_load's protocol), read the subscribers in between."""
    raise_nofile()
    worker = _Subscribers(host, port, topic)
    commands: dict[str, Callable[[Any], Any]] = {
        "connect": worker.connect,
        "reset": lambda _: worker.reset(),
        "progress": lambda _: (min(worker.count.values(), default=0), sum(worker.count.values())),
        "collect": lambda _: worker.collect(),
        "close": lambda _: worker.close(),
    }
    try:
        while True:
            if pipe.poll(0):
                command, arg = pipe.recv()
                pipe.send(("ok", commands[command](arg)))
                if command == "close":
                    return
            worker.step(0.02)
    except Exception as exc:  # report it; the parent raises
        pipe.send(("error", repr(exc)))


class MqttLoad(SseLoad):
    """N MQTT subscribers spread over `procs` worker processes; connect, reset, progress, collect as SseLoad."""

    def __init__(self, port: int, topic: str = TOPIC, procs: int = 2, host: str = "127.0.0.1") -> None:
        raise_nofile()
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, host, port, topic), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def connect(self, n: int) -> None:
        """Open n subscribers in all, split evenly, and wait until every one is subscribed."""
        super().connect(n)
