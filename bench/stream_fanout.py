"""Stream fan-out: N concurrent /events/stream clients on ONE gevent worker, alerts at a steady rate.

A real Mosquitto, the real ingest and the real gunicorn web process; a device-side paho client
publishes alert transitions with its send time in `msg`; N raw-socket SSE clients (asyncio, in
this process) read every event. Prints, per N: delivery completeness (received / expected per
client, duplicates, drops) and latency from the device's publish to a client's receipt, p50/p99.
Run: .venv/bin/python -m bench.stream_fanout [--clients 100 1000] [--rate 20] [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import resource
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import Stack, cpu_seconds, percentile

DEVICES = 50
MARK = re.compile(rb'"message":"bench (\d+) (\d+\.\d+)"')
DRAIN_S = 15.0  # after the last publish, how long clients may take to receive the rest


@dataclass
class Client:
    """What one SSE client saw."""

    seqs: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lost: bool = False


class SseProtocol(asyncio.Protocol):
    """HTTP/1.0 GET of the stream (no chunking), then SSE messages split on blank lines."""

    def __init__(self, path: str, result: Client, ready: asyncio.Future[None]) -> None:
        self.request = f"GET {path} HTTP/1.0\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n".encode()
        self.result = result
        self.ready = ready
        self.buffer = b""
        self.in_body = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.in_body:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
                self.fail(head.split(b"\r\n", 1)[0].decode())
                return
            self.in_body, self.buffer = True, rest
        *messages, self.buffer = self.buffer.split(b"\n\n")
        for message in messages:
            if message.startswith(b"id: "):
                match = MARK.search(message)
                if match:
                    self.result.seqs.append(int(match[1]))
                    self.result.latencies.append(now - float(match[2]))
            elif message.startswith(b"retry:") and not self.ready.done():
                self.ready.set_result(None)

    def fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self.result.lost = True
        self.fail(f"connection lost: {exc}")


def publisher(port: int, rate: float, count: int) -> None:
    """Publish `count` alert transitions at `rate` per second, round-robin over DEVICES devices.

    Runs in its own process: sharing the GIL with the clients' loop would delay the sends
    after their timestamps were taken.
    """
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-fanout-pub")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.monotonic()
    for seq in range(count):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        state = "WARNING" if (seq // DEVICES) % 2 == 0 else "CRITICAL"
        body = {"subsystem": "Bench", "state": state, "msg": f"bench {seq} {now:.6f}"}
        client.publish(f"vesper/fan-{seq % DEVICES:03d}/status/alerts", json.dumps(body), qos=1)
    client.loop_stop()
    client.disconnect()


def healthz(port: int) -> dict[str, Any]:
    """The web process's /healthz."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        return json.load(response)


def wait_until(check: Any, timeout: float, what: str) -> None:
    """Poll until check() is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def run_round(stack: Stack, worker: int, n: int, rate: float, seconds: float) -> dict[str, Any]:
    """Open n clients, publish rate*seconds alerts, collect what every client received."""
    loop = asyncio.get_running_loop()
    clients = [Client() for _ in range(n)]
    transports = []
    for i, client in enumerate(clients):
        ready: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda c=client, r=ready: SseProtocol("/events/stream", c, r), "127.0.0.1", stack.web_port
        )
        transports.append(transport)
        await asyncio.wait_for(ready, 30)
        if i % 200 == 199:
            await asyncio.sleep(0)
    await loop.run_in_executor(None, wait_until, lambda: healthz(stack.web_port)["streams"]["clients"] == n, 30, "n")
    before = healthz(stack.web_port)["streams"]
    count = int(rate * seconds)
    cpu0, wall0 = cpu_seconds(worker), time.monotonic()
    sender = multiprocessing.get_context("spawn").Process(target=publisher, args=(stack.port, rate, count))
    sender.start()
    while sender.is_alive():
        await asyncio.sleep(0.2)
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and any(len(c.seqs) < count and not c.lost for c in clients):
        await asyncio.sleep(0.1)
    cpu, wall = cpu_seconds(worker) - cpu0, time.monotonic() - wall0
    after = healthz(stack.web_port)["streams"]
    for transport in transports:
        transport.close()
    # The server notices a hang-up at its next write (the 15 s keepalive at the latest).
    await loop.run_in_executor(None, wait_until, lambda: healthz(stack.web_port)["streams"]["clients"] == 0, 60, "0")
    received = [len(c.seqs) for c in clients]
    latencies = [x for c in clients for x in c.latencies]
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for c in clients:
        for seq, latency in zip(c.seqs, c.latencies, strict=True):
            first[seq] = min(first.get(seq, latency), latency)
            last[seq] = max(last.get(seq, latency), latency)
    spread = [last[seq] - first[seq] for seq in first]
    return {
        "clients": n,
        "events": count,
        "expected": count * n,
        "received": sum(received),
        "complete_clients": sum(1 for c in clients if sorted(set(c.seqs)) == list(range(count))),
        "min_completeness": min(received) / count,
        "duplicates": sum(len(c.seqs) - len(set(c.seqs)) for c in clients),
        "out_of_order": sum(1 for c in clients if c.seqs != sorted(c.seqs)),
        "dropped": after["dropped"] - before["dropped"],
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "first_p99_ms": percentile(list(first.values()), 99) * 1000,
        "spread_p50_ms": percentile(spread, 50) * 1000,
        "spread_p99_ms": percentile(spread, 99) * 1000,
        "worker_cpu": cpu / wall,
    }


def ingest_latency(stack: Stack, count: int) -> tuple[float, float]:
    """Publish -> the event's ts (the ingest's receipt of its batch), p50/p99 in ms, last round."""
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.web_port}/api/events?limit={min(count, 1000)}") as r:
        events = json.load(r)["events"]
    lags = []
    for event in events:
        match = MARK.search(json.dumps(event, separators=(",", ":")).encode())
        if match:
            stored = datetime.fromisoformat(event["ts"]).timestamp()
            lags.append(stored - float(match[2]))
    return percentile(lags, 50) * 1000, percentile(lags, 99) * 1000


def worker_pid(master: int) -> int:
    """The single gunicorn worker's pid."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def main() -> int:
    """Run each round against one stack and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rate", type=float, default=20.0, help="alert transitions per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="small N, short run")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = [10, 100], 5.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the web process
    if max(args.clients) + 200 > hard:
        print(f"RLIMIT_NOFILE hard limit {hard} is too low for {max(args.clients)} clients", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vesper-fanout-") as tmp:
        web = {"workers": 1, "max_streams": max(args.clients) + 50}
        stack = Stack(Path(tmp), web=web, liveness={"heartbeat_timeout_s": 3600.0})
        try:
            stack.ingest()
            master = stack.web()
            wait_until(lambda: healthz(stack.web_port)["bridge"]["connected"], 30, "the bridge")
            worker = worker_pid(master.pid)
            print(f"one gevent worker (pid {worker}); {args.rate:g} alert transitions/s for {args.seconds:g} s")
            print(f"{'N':>6} {'expected':>9} {'received':>9} {'complete':>9} {'min %':>6} {'dup':>4} {'drop':>5}"
                  f" {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'worker CPU':>10}")  # fmt: skip
            for n in args.clients:
                r = asyncio.run(run_round(stack, worker, n, args.rate, args.seconds))
                print(f"{r['clients']:>6} {r['expected']:>9} {r['received']:>9} "
                      f"{r['complete_clients']:>5}/{r['clients']:<3} {100 * r['min_completeness']:>6.1f} "
                      f"{r['duplicates']:>4} {r['dropped']:>5} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
                      f"{r['max_ms']:>7.1f} {100 * r['worker_cpu']:>9.0f}%", flush=True)  # fmt: skip
                print(f"       first client per event p99 {r['first_p99_ms']:.1f} ms; first-to-last client spread"
                      f" p50 {r['spread_p50_ms']:.1f} ms, p99 {r['spread_p99_ms']:.1f} ms")  # fmt: skip
                if r["out_of_order"]:
                    print(f"       {r['out_of_order']} clients saw events out of order")
            p50, p99 = ingest_latency(stack, int(args.rate * args.seconds))
            print(f"of which publish -> ingest batch time (event ts): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        finally:
            stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
