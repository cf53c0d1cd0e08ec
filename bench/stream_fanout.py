"""Stream fan-out: N concurrent /events/stream clients on ONE gevent worker, alerts at a steady rate.

A real Mosquitto, the real ingest and the real gunicorn web process with one worker (--workers for
more, to see how they scale); a device-side
paho client (its own process) publishes alert transitions with its send time in `msg`; N SSE
clients (bench/sse_load.py: two processes of epoll loops over raw sockets) count every event.
For each N the event rate climbs a ladder of delivery targets (events/s x N) until a step is not
held: every client received every event, in order, none dropped, p99 within the bound.
Run: .venv/bin/python -m bench.stream_fanout [--clients 1000 5000] [--targets 25000 50000 ...]
     [--seconds 8] [--workers 1] [--every-step] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import Stack, cpu_times, percentile, rss_mib
from bench.sse_load import SseLoad, Tally, raise_nofile

DEVICES = 50
DRAIN_S = 10.0  # after the last publish, how long clients may take to receive the rest
P99_BOUND_MS = 250.0


def publisher(port: int, rate: float, count: int, cpu: Any = None) -> None:
    """Publish `count` alert transitions at `rate` per second, round-robin over DEVICES devices.

    Runs in its own process: sharing a GIL with anything else would delay the sends after their
    timestamps were taken. Each message is unique (seq and time), so each becomes an event. With `cpu`
    (a multiprocessing Value), its CPU share of one core while it sent is left there.
    """
    t0, c0 = time.monotonic(), time.process_time()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-fanout-pub")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    start = time.monotonic()
    for seq in range(count):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        state = "WARNING" if (seq // DEVICES) % 2 == 0 else "CRITICAL"
        body = {"subsystem": "Bench", "state": state, "msg": f"bench {seq} {time.time():.6f}"}
        infos.append(client.publish(f"vesper/fan-{seq % DEVICES:03d}/status/alerts", json.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()
    if cpu is not None:
        cpu.value = 100 * (time.process_time() - c0) / max(1e-9, time.monotonic() - t0)


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


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers' pids."""
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def cpu_of(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of these processes together."""
    times = [cpu_times(pid) for pid in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def fanout_stack(
    tmp: Path, max_clients: int, seed: Callable[[Path], None] | None = None, workers: int = 1
) -> tuple[Stack, list[int]]:
    """Broker, ingest and a web process whose workers each take max_clients; returns the worker pids.

    `seed(db)` may write the database before the processes start.
    """
    raise_nofile()  # inherited by the web process
    web = {"workers": workers, "max_streams": max_clients + 50, "stream_queue_size": 1000}
    stack = Stack(tmp, web=web, liveness={"heartbeat_timeout_s": 3600.0})
    if seed is not None:
        seed(stack.db)
    stack.ingest()
    master = stack.web()
    wait_until(lambda: len(worker_pids(master.pid)) == workers, 30, "the workers")
    wait_until(lambda: healthz(stack.web_port)["bridge"]["connected"], 30, "the bridge")
    return stack, worker_pids(master.pid)


def profile(pid: int | None, name: str, seconds: float) -> None:
    """With BENCH_PYSPY=dir, record py-spy's collapsed stacks of a process while a step runs."""
    out = os.environ.get("BENCH_PYSPY")
    if out and pid:
        spy = ["py-spy", "record", "--format", "raw", "-r", "200", "-d", str(max(1, int(seconds - 1)))]
        subprocess.Popen(
            [*spy, "--pid", str(pid), "-o", f"{out}/{name}.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )


def hang_up(stack: Stack, workers: int = 1) -> None:
    """Wait until the workers have let go of closed clients; they notice at a write, so send events.

    /healthz answers for whichever worker took the request: with several, every answer in a row must say 0.
    """
    deadline = time.monotonic() + 60
    zeros = 0
    while zeros < 4 * workers - 3:
        if healthz(stack.web_port)["streams"]["clients"]:
            zeros = 0
            if time.monotonic() > deadline:
                raise RuntimeError("the web worker still holds closed stream clients")
            publisher(stack.port, 100.0, 2)
            time.sleep(0.2)
        else:
            zeros += 1


def one_rate(stack: Stack, load: SseLoad, workers: list[int], n: int, rate: float, seconds: float) -> dict[str, Any]:
    """Publish rate*seconds alerts to n connected clients; what they received, and how late."""
    count = max(1, int(rate * seconds))
    load.reset()
    dropped0 = healthz(stack.web_port)["streams"]["dropped"]  # one worker's (several: see completeness)
    times0, wall0 = cpu_of(workers), time.monotonic()
    load_cpu0 = load.cpu_each()
    ctx = multiprocessing.get_context("spawn")
    pub_cpu = ctx.Value("d", 0.0)
    sender = ctx.Process(target=publisher, args=(stack.port, rate, count, pub_cpu))
    sender.start()
    for i, pid in enumerate(workers):
        profile(pid, f"worker{i}-{n}-{rate:g}", seconds)
    for i, proc in enumerate(load.procs):
        profile(proc.pid, f"clients{i}-{n}-{rate:g}", seconds)
    sender.join()
    await_delivery(load, count)
    times1, wall = cpu_of(workers), time.monotonic() - wall0
    user, system = times1[0] - times0[0], times1[1] - times0[1]
    cpu = user + system
    load_each = [b - a for a, b in zip(load_cpu0, load.cpu_each(), strict=True)]
    dropped = healthz(stack.web_port)["streams"]["dropped"] - dropped0
    step = step_result(n, rate, count, load.collect(), cpu, wall, load_each)
    step.update(
        complete=step["complete"] and not dropped,
        held=step["held"] and not dropped,
        dropped=dropped,
        worker_cpu=100 * cpu / wall,
        pub_cpu=pub_cpu.value,
        sys_share=100 * system / max(cpu, 1e-9),
    )
    return step


def await_delivery(load: SseLoad, count: int) -> None:
    """Wait (at most DRAIN_S) until every client has `count` events."""
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and load.progress()[0] < count:
        time.sleep(0.1)


def step_result(
    n: int, rate: float, count: int, tally: Tally, cpu: float, wall: float, load_cpu: list[float]
) -> dict[str, Any]:
    """One step's figures: what n clients got of `count` events, how late, and per delivery `cpu` seconds' share."""
    lat = sorted(tally.latencies)
    received = sum(tally.counts)
    exact = len(tally.counts) == n and min(tally.counts, default=0) == count and max(tally.counts) == count
    complete = exact and not tally.disorder and not tally.closed
    p99 = percentile(lat, 99) * 1000
    return {
        "clients": n,
        "rate": rate,
        "events": count,
        "target": rate * n,
        "expected": count * n,
        "received": received,
        "complete": complete,
        "min_pct": 100 * min(tally.counts, default=0) / count,
        "disorder": tally.disorder,
        "closed": tally.closed,
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": p99,
        "max_ms": (lat[-1] if lat else float("nan")) * 1000,
        "load_cpu": 100 * sum(load_cpu) / wall,
        "load_cpu_max": 100 * max(load_cpu, default=0.0) / wall,
        "us_per_delivery": 1e6 * cpu / max(1, received),
        "held": complete and p99 <= P99_BOUND_MS,
    }


def ladder(
    stack: Stack,
    workers: list[int],
    n: int,
    targets: list[float],
    seconds: float,
    report: Any = None,
    stop: bool = True,
    fallback: float = 0.0,
) -> dict[str, Any]:
    """Connect n clients, climb the delivery targets until one is not held; the best held step.

    If no target was held, `fallback` deliveries/s (if given) is tried too: a held step to set beside the floor.
    """
    rss0 = sum(rss_mib(pid) for pid in workers)
    load = SseLoad("127.0.0.1", stack.web_port)
    try:
        load.connect(n)  # each has had its first message: each is registered with a worker's hub
        steps = []
        for target in targets:
            step = one_rate(stack, load, workers, n, target / n, seconds)
            steps.append(step)
            if report:
                report(step)
            if stop and not step["held"]:
                break
        if fallback and not any(x["held"] for x in steps):
            steps.insert(0, one_rate(stack, load, workers, n, fallback / n, seconds))
        rss1 = sum(rss_mib(pid) for pid in workers)
    finally:
        load.close()
    hang_up(stack, len(workers))
    held = [s for s in steps if s["held"]]
    best = max(held, key=lambda s: s["target"]) if held else steps[0]
    return {**best, "held_any": bool(held), "steps": steps, "kib_per_client": (rss1 - rss0) * 1024 / n}


def print_step(s: dict[str, Any]) -> None:
    """One ladder step as a line."""
    print(
        f"{s['clients']:>6} {s['rate']:>7.1f} {s['target']:>9,.0f} {s['received']:>10,} {s['min_pct']:>6.1f}"
        f" {s['disorder']:>4} {s['dropped']:>5} {s['p50_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['max_ms']:>7.1f}"
        f" {s['worker_cpu']:>6.0f}% {s['us_per_delivery']:>5.1f} {s['sys_share']:>4.0f}% {s['load_cpu']:>6.0f}%"
        f" {'held' if s['held'] else 'NOT held'}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run each N against one stack and print every ladder step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--targets", type=float, nargs="+", default=[25_000, 50_000, 75_000, 100_000, 150_000])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--quick", action="store_true", help="small N, short run")
    parser.add_argument("--every-step", action="store_true", help="run every target, held or not")
    parser.add_argument("--workers", type=int, default=1, help="gevent workers (each has its own bridge)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.targets, args.seconds = [10, 100], [500, 2000], 3.0
    hard = raise_nofile()
    if max(args.clients) + 200 > hard:
        print(f"RLIMIT_NOFILE hard limit {hard} is too low for {max(args.clients)} clients", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vesper-fanout-") as tmp:
        stack, workers = fanout_stack(Path(tmp), max(args.clients), workers=args.workers)
        try:
            cores = multiprocessing.cpu_count()
            print(f"gevent workers {workers}; cores: {cores}; {args.seconds:g} s per step")
            print(
                f"{'N':>6} {'ev/s':>7} {'target/s':>9} {'received':>10} {'min %':>6} {'ooo':>4} {'drop':>5}"
                f" {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'workers':>7} {'us/dl':>5} {'sys':>5} {'clients':>7}"
            )
            for n in args.clients:
                best = ladder(stack, workers, n, args.targets, args.seconds, print_step, stop=not args.every_step)
                if not best["held_any"]:
                    print(f"       N={n}: no step held", flush=True)
                    continue
                print(
                    f"       N={n}: best held {best['target']:,.0f} deliveries/s, p99 {best['p99_ms']:.0f} ms; "
                    f"worker RSS {best['kib_per_client']:.0f} KiB per client",
                    flush=True,
                )
        finally:
            stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
