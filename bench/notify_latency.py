"""Notifications: a device's alert publish -> the message at a webhook, and messages per second to a webhook.

The real ingest (its notification sink and channel worker) against a real broker, a JSON webhook
(Apprise json://) served here on loopback, group_wait_s = 0. Latency: alerts paced one at a time,
each on its own device so each is its own message. Rate: messages queued at once, drained by the
channel's worker (an Apprise POST and a SQLite update each).
Run: .venv/bin/python -m bench.notify_latency [--alerts 200] [--rate 20] [--queued 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench.common import Stack, percentile
from shared import store

MARK = re.compile(r"bench (\d+) (\d+\.\d+)")


class Receiver:
    """A webhook that notes when each message arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver.lock:
                    receiver.arrivals.append((time.time(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        """Messages received so far."""
        with self.lock:
            return len(self.arrivals)

    def wait(self, n: int, timeout: float) -> None:
        """Until n messages have arrived."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count()} of {n} messages arrived")
            time.sleep(0.01)


def stack_with_channel(tmp: Path, url: str) -> Stack:
    """A broker and an ingest with one channel and one zero-wait rule."""
    stack = Stack(tmp)
    notify = [
        "[notify]",
        "[[notify.channels]]",
        'name = "bench"',
        f"url = {json.dumps(url)}",
        "[[notify.rules]]",
        'channel = "bench"',
        'types = ["alert"]',
        'min_severity = "warning"',
        "group_wait_s = 0.0",
    ]
    stack.config.write_text(stack.config.read_text() + "\n".join(notify) + "\n")
    stack.ingest()
    return stack


def latency_round(stack: Stack, receiver: Receiver, alerts: int, rate: float, offset: int) -> list[float]:
    """Publish paced alerts; seconds from each publish to its message at the webhook."""
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-dev-{offset}")
    client.connect("127.0.0.1", stack.port)
    client.loop_start()
    start = receiver.count()
    try:
        for i in range(alerts):
            body = {"subsystem": "Audio", "state": "CRITICAL", "msg": f"bench {offset + i} {time.time():.6f}"}
            client.publish(f"vesper/lat-{offset + i}/status/alerts", json.dumps(body), qos=1).wait_for_publish(5)
            time.sleep(1 / rate)  # pacing the load generator, not waiting for a result
        receiver.wait(start + alerts, 60)
    finally:
        client.disconnect()
        client.loop_stop()
    with receiver.lock:
        new = receiver.arrivals[start:]
    return [at - float(m[2]) for at, body in new if (m := MARK.search(body["message"]))]


def rate_round(stack: Stack, receiver: Receiver, queued: int) -> float:
    """Queue messages at once (as the sink does); messages per second until the last arrived."""
    start = receiver.count()
    conn = store.connect(stack.db)
    began = time.time()
    with store.write(conn):
        for i in range(queued):
            store.enqueue(conn, "bench", f"rate {i}", "body", "info", [], began)
    conn.close()
    receiver.wait(start + queued, 120)
    with receiver.lock:
        last = receiver.arrivals[-1][0]
    return queued / (last - began)


def main(argv: list[str] | None = None) -> int:
    """Print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200, help="paced alerts per latency round")
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second in the latency rounds")
    parser.add_argument("--queued", type=int, default=500, help="messages queued at once per rate round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="vesper-notify-") as tmp:
        stack = stack_with_channel(Path(tmp), receiver.url)
        try:
            lat = [latency_round(stack, receiver, args.alerts, args.rate, r * args.alerts) for r in range(args.rounds)]
            rates = [rate_round(stack, receiver, args.queued) for _ in range(args.rounds)]
        finally:
            stack.close()
    p50 = statistics.median(percentile(r, 50) for r in lat) * 1000
    p99 = statistics.median(percentile(r, 99) for r in lat) * 1000
    print(f"notifications, group_wait_s = 0, medians of {args.rounds} rounds")
    print(f"  alert publish -> webhook, {args.alerts} alerts at {args.rate:g}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  messages per second to one webhook ({args.queued} queued at once): {statistics.median(rates):,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
