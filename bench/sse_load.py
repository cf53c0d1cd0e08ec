"""Stream clients cheap enough not to be the bottleneck: worker processes, each one epoll loop.

Each client is a raw socket with an HTTP/1.0 GET of /events/stream (no chunked framing). A
worker counts, per client, the bench events it receives: it finds the
`"message":"bench <seq> <publish time>"` the bench device put in each alert with one regular
expression over the whole frames a recv completed, and keeps each client's count, last seq and order,
and every latency (receipt - publish time) in an array. The parent drives the workers over a
pipe: connect, reset, collect, close.
"""

from __future__ import annotations

import multiprocessing
import re
import resource
import select
import socket
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.common import cpu_seconds

# The bench marker in an event's alert message, one per frame (the cut at the last blank line keeps frames whole).
# A literal prefix: the regex engine skips to it, ~0.4 us a frame, where matching from `id:` took ~3 us.
FRAME = re.compile(rb'"message":"bench (\d+) (\d+\.\d+)"')
READ_SIZE = 1 << 18
CONNECT_TIMEOUT_S = 60.0


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE to its hard limit (inherited by processes started after); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class _Worker:
    """The clients of one process and their tallies."""

    READY = "streams connected"  # what `in_body` means, for the error when some never got there

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port = host, port
        self.request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        self.poll = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.tail: dict[int, bytes] = {}
        self.in_body: dict[int, bool] = {}
        self.count: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.disorder: dict[int, int] = {}
        self.closed: set[int] = set()
        self.latencies = array("d")

    def connect(self, n: int) -> None:
        """Open n streams and wait until each got its first (connected) message."""
        for _ in range(n):
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(self.opening())
            sock.setblocking(False)
            fd = sock.fileno()
            self.socks[fd] = sock
            self.tail[fd] = b""
            self.in_body[fd] = False
            self.poll.register(fd, select.EPOLLIN)
        self.reset()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not all(self.in_body.values()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sum(self.in_body.values())} of {len(self.socks)} {self.READY}")
            self.step(0.05)

    def opening(self) -> bytes:
        """What a new client sends first: the stream's request."""
        return self.request

    def reset(self) -> None:
        """Start a new round of counting."""
        for fd in self.socks:
            self.count[fd] = 0
            self.last[fd] = -1
            self.disorder[fd] = 0
        self.latencies = array("d")

    def step(self, timeout: float) -> None:
        """Read whatever is ready."""
        for fd, _ in self.poll.poll(timeout):
            self.read(fd)

    def receive(self, fd: int) -> bytes | None:
        """What arrived on fd, after the tail kept from before; None if nothing did or the peer hung up."""
        try:
            chunk = self.socks[fd].recv(READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            chunk = b""
        if not chunk:
            self.poll.unregister(fd)
            self.closed.add(fd)
            return None
        return self.tail[fd] + chunk

    def read(self, fd: int) -> None:
        data = self.receive(fd)
        if data is None:
            return
        now = time.time()
        if not self.in_body[fd]:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if not sep:
                self.tail[fd] = data
                return
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                status = head.split(b"\r\n", 1)[0].decode(errors="replace")
                raise RuntimeError(f"stream refused: {status}")
            self.in_body[fd] = True
            data = rest
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self.tail[fd] = data
            return
        self.tail[fd] = data[cut + 2 :]
        last = self.last[fd]
        n = 0
        for seq_b, ts_b in FRAME.findall(data, 0, cut + 1):
            seq = int(seq_b)
            if seq <= last:
                self.disorder[fd] += 1
            last = seq
            self.latencies.append(now - float(ts_b))
            n += 1
        self.last[fd] = last
        self.count[fd] += n

    def collect(self) -> dict[str, Any]:
        """This round's tallies."""
        return {
            "counts": list(self.count.values()),
            "disorder": sum(self.disorder.values()),
            "closed": len(self.closed),
            "latencies": self.latencies.tobytes(),
        }

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.poll.close()


def _serve(pipe: Connection, host: str, port: int, path: str) -> None:
    """A worker process: obey the parent's commands, read the streams in between."""
    raise_nofile()
    worker = _Worker(host, port, path)
    try:
        while True:
            if pipe.poll(0):
                command, arg = pipe.recv()
                if command == "connect":
                    worker.connect(arg)
                    pipe.send(("ok", None))
                elif command == "reset":
                    worker.reset()
                    pipe.send(("ok", None))
                elif command == "progress":
                    pipe.send(("ok", (min(worker.count.values(), default=0), sum(worker.count.values()))))
                elif command == "collect":
                    pipe.send(("ok", worker.collect()))
                elif command == "close":
                    worker.close()
                    pipe.send(("ok", None))
                    return
            worker.step(0.02)
    except Exception as exc:  # report it; the parent raises
        pipe.send(("error", repr(exc)))


@dataclass
class Tally:
    """What every client of every worker received in one round."""

    counts: list[int] = field(default_factory=list)
    disorder: int = 0
    closed: int = 0
    latencies: array = field(default_factory=lambda: array("d"))


class SseLoad:
    """N stream clients spread over `procs` worker processes."""

    def __init__(self, host: str, port: int, path: str = "/events/stream", procs: int = 2) -> None:
        raise_nofile()
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, host, port, path), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def _all(self, command: str, args: list[Any] | None = None, timeout: float = 120.0) -> list[Any]:
        for i, pipe in enumerate(self.pipes):
            pipe.send((command, args[i] if args else None))
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError(f"a stream client process did not answer {command!r}")
            status, value = pipe.recv()
            if status != "ok":
                raise RuntimeError(f"stream client process failed: {value}")
            out.append(value)
        return out

    def connect(self, n: int) -> None:
        """Open n clients in all, split evenly, and wait for each one's connected message."""
        k = len(self.pipes)
        self._all("connect", [n // k + (1 if i < n % k else 0) for i in range(k)])

    def reset(self) -> None:
        """Zero the tallies before a round."""
        self._all("reset")

    def progress(self) -> tuple[int, int]:
        """(fewest events any client has, events received in all) so far this round."""
        parts = self._all("progress")
        return min(p[0] for p in parts), sum(p[1] for p in parts)

    def collect(self) -> Tally:
        """Every client's count, order errors, hang-ups, and every latency."""
        tally = Tally()
        for part in self._all("collect"):
            tally.counts += part["counts"]
            tally.disorder += part["disorder"]
            tally.closed += part["closed"]
            tally.latencies.frombytes(part["latencies"])
        return tally

    def cpu(self) -> float:
        """CPU seconds the client processes have used."""
        return sum(self.cpu_each())

    def cpu_each(self) -> list[float]:
        """CPU seconds each client process has used."""
        return [cpu_seconds(p.pid) for p in self.procs if p.pid is not None]

    def close(self) -> None:
        """Hang up every client and end the worker processes."""
        try:
            self._all("close", timeout=30)
        finally:
            for proc in self.procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
