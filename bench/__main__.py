"""`make bench`: Vesper beside the limits of its parts, as one table (medians of several rounds).

Every figure comes from the real processes (Mosquitto, `python -m vesper_ingest`, gunicorn with
one gevent worker) started with their own config in a temporary directory; the load generators
run on the same machine and share its cores, which the table says.
Run: .venv/bin/python -m bench [--quick] [--rounds 3] [--soak-seconds 600] [--only a b ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import api_latency, heartbeat_fleet, ingest_throughput, latency, soak, stream_fanout
from bench.sse_load import raise_nofile
from vesper_sim import broker


@dataclass(frozen=True)
class Sizes:
    """How big and how long each part runs."""

    rounds: int
    messages: int  # (a) transitions per round
    fleet: int  # (b) devices
    fleet_seconds: float
    fleet_warmup: float
    fleet_search: tuple[int, ...]
    latency_rate: float  # (c) transitions per second
    latency_seconds: float
    fanout_clients: tuple[int, ...]  # (d)
    fanout_targets: tuple[float, ...]  # deliveries per second tried, in order
    fanout_seconds: float
    api_devices: int  # (e)
    api_lists: int
    api_alerts: int
    soak_seconds: float  # (f)
    soak_devices: int


FULL = Sizes(
    rounds=3,
    messages=20_000,
    fleet=100_000,
    fleet_seconds=15.0,
    fleet_warmup=5.0,
    fleet_search=(200_000, 300_000, 400_000, 500_000, 600_000, 700_000, 800_000, 1_000_000),
    latency_rate=1000.0,
    latency_seconds=10.0,
    fanout_clients=(1000, 5000),
    fanout_targets=(25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000),
    fanout_seconds=8.0,
    api_devices=10_000,
    api_lists=50,
    api_alerts=500,
    soak_seconds=600.0,
    soak_devices=100_000,
)
QUICK = Sizes(
    rounds=1,
    messages=2_000,
    fleet=5_000,
    fleet_seconds=2.0,
    fleet_warmup=1.0,
    fleet_search=(),
    latency_rate=200.0,
    latency_seconds=2.0,
    fanout_clients=(20, 100),
    fanout_targets=(500, 2000),
    fanout_seconds=2.0,
    api_devices=1_000,
    api_lists=5,
    api_alerts=50,
    soak_seconds=3.0,
    soak_devices=5_000,
)


@dataclass
class Table:
    """Rows of (section, figure, value, target, verdict); printed once at the end."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    verdicts: bool = True  # the targets are for the full sizes: a quick run only shows them

    def add(self, section: str, figure: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None or not self.verdicts else ("met" if met else "MISSED")
        self.rows.append((section, figure, value, target, verdict))
        print(f"  {section}  {figure}: {value}", file=sys.stderr, flush=True)

    def print(self, header: list[str], notes: list[str]) -> None:
        widths = [max(len(r[i]) for r in self.rows) for i in range(5)]
        for line in header:
            print(line)
        print()
        titles = ("", "figure", "value", "target", "")
        print("  ".join(t.ljust(widths[i]) if i != 2 else t.rjust(widths[i]) for i, t in enumerate(titles)).rstrip())
        last = None
        for row in self.rows:
            if last is not None and row[0] != last:
                print()
            last = row[0]
            cells = [c.rjust(widths[i]) if i == 2 else c.ljust(widths[i]) for i, c in enumerate(row)]
            print("  ".join(cells).rstrip())
        print()
        for note in notes:
            print(note)


def part_a(table: Table, s: Sizes) -> None:
    """Ingest throughput beside a bare paho subscriber, zero loss."""
    results = []
    for r in range(s.rounds):
        with tempfile.TemporaryDirectory(prefix="vesper-a-") as tmp:
            results.append(ingest_throughput.one_round(s.messages, 1000, seed=r, tmp=Path(tmp)))
    ingest = statistics.median(r["ingest"] for r in results)
    bare = statistics.median(r["bare"] for r in results)
    ratio = statistics.median(r["ingest"] / r["bare"] for r in results)
    lost = any(r["lost"] for r in results)
    table.add("a", f"ingest: {s.messages:,} QoS 1 alert transitions, ack after commit", f"{ingest:,.0f} msg/s")
    table.add("a", "bare paho subscriber, same broker, same backlog", f"{bare:,.0f} msg/s")
    table.add("a", "ratio ingest / bare", f"{ratio:.2f}", ">= 0.6", ratio >= 0.6)
    table.add("a", "zero loss: final state and events as published", "yes" if not lost else "NO", "yes", not lost)
    if lost:
        table.failed.append("a: state lost")


def part_b(table: Table, s: Sizes) -> None:
    """Heartbeat fleet: CPU share and last_seen lag; the largest fleet held."""
    runs = [heartbeat_fleet.run(s.fleet, s.fleet_seconds, warmup=s.fleet_warmup) for _ in range(s.rounds)]
    cpu = statistics.median(r["cpu"] for r in runs)
    p50 = statistics.median(r["p50_ms"] for r in runs)
    p99 = statistics.median(r["p99_ms"] for r in runs)
    table.add(
        "b",
        f"{s.fleet:,} devices ({runs[0]['rate']:,.0f} heartbeats/s): ingest CPU",
        f"{cpu:.0f} % of a core",
        "<= 50 %",
        cpu <= 50,
    )
    table.add("b", "  last_seen lag p50 / p99", f"{p50:.0f} / {p99:.0f} ms", "p99 <= 1 s", p99 <= 1000)
    if not s.fleet_search:
        return
    best, tried = heartbeat_fleet.largest(list(s.fleet_search), s.fleet_seconds, s.fleet_warmup)
    held = [r for r in tried if r["held"]]
    table.add("b", "largest fleet held (lag p99 <= 1 s), short search", f"{best:,} devices" if held else "none tried")
    for r in tried:
        verdict = "held" if r["held"] else "not held"
        table.add(
            "b",
            f"  {r['devices']:,} devices, {r['rate']:,.0f}/s: ingest CPU, lag p99 ({verdict})",
            f"{r['cpu']:.0f} %, {r['p99_ms']:,.0f} ms",
        )


def part_cd(table: Table, s: Sizes) -> None:
    """Latency at a steady rate, then fan-out ladders, on one stack."""
    with tempfile.TemporaryDirectory(prefix="vesper-cd-") as tmp:
        stack, workers = stream_fanout.fanout_stack(Path(tmp), max(s.fanout_clients))
        try:
            c = latency.measure(stack, workers, 10, s.latency_rate, s.latency_seconds, s.rounds)
            table.add(
                "c",
                f"publish -> stream client, {s.latency_rate:,.0f} alerts/s: p50 / p99",
                f"{c['p50_ms']:.1f} / {c['p99_ms']:.1f} ms",
                "p99 <= 50 ms",
                c["p99_ms"] <= 50,
            )
            table.add(
                "c",
                "  of which publish -> committed (ingest): p50 / p99",
                f"{c['ingest_p50_ms']:.1f} / {c['ingest_p99_ms']:.1f} ms",
            )
            table.add("c", "  every event reached every client", "yes" if c["complete"] else "NO")
            for n in s.fanout_clients:
                _ladder_rows(
                    table, s, n, stream_fanout.ladder(stack, workers, n, list(s.fanout_targets), s.fanout_seconds)
                )
        finally:
            stack.close()


def _ladder_rows(table: Table, s: Sizes, n: int, best: dict[str, Any]) -> None:
    """(d) rows for one N: the best held step, and the first step that was not."""
    if best["held_any"]:
        rate = best["received"] / s.fanout_seconds
        top = "" if any(not x["held"] for x in best["steps"]) else " (top step)"
        table.add(
            "d",
            f"{n:,} clients, one worker: deliveries/s, 100 % complete{top}",
            f"{rate:,.0f} /s",
            ">= 50,000",
            rate >= 50_000,
        )
        table.add(
            "d",
            f"  p50 / p99 at {best['rate']:g} events/s to each client",
            f"{best['p50_ms']:.0f} / {best['p99_ms']:.0f} ms",
            "p99 <= 250 ms",
            best["p99_ms"] <= 250,
        )
        table.add(
            "d", "  worker CPU; CPU per delivery", f"{best['worker_cpu']:.0f} %; {best['us_per_delivery']:.1f} us"
        )
    failed = next((x for x in best["steps"] if not x["held"]), None)
    if failed is not None:
        table.add(
            "d",
            f"  {failed['target']:,.0f}/s not held: p99 / fewest received",
            f"{failed['p99_ms']:,.0f} ms / {failed['min_pct']:.1f} %",
            "",
            None if best["held_any"] else False,
        )
    table.add("d", "  worker RSS per connected client", f"{best['kib_per_client']:.0f} KiB")


def part_e(table: Table, s: Sizes) -> None:
    """API latency with a seeded fleet."""
    with tempfile.TemporaryDirectory(prefix="vesper-e-") as tmp:
        r = api_latency.measure(s.api_devices, s.api_lists, s.api_alerts, s.rounds, Path(tmp))
    table.add(
        "e",
        f"GET /api/devices, {s.api_devices:,} devices ({r['devices_kib']:,.0f} KiB): p50 / p99",
        f"{r['devices_p50_ms']:.1f} / {r['devices_p99_ms']:.1f} ms",
        "p99 <= 50 ms",
        r["devices_p99_ms"] <= 50,
    )
    table.add(
        "e",
        "GET /api/devices/{id}/alerts: p50 / p99",
        f"{r['alerts_p50_ms']:.1f} / {r['alerts_p99_ms']:.1f} ms",
        "p99 <= 50 ms",
        r["alerts_p99_ms"] <= 50,
    )


def part_f(table: Table, s: Sizes) -> None:
    """RSS before and after a soak at (b)'s load."""
    r = soak.run(s.soak_devices, s.soak_seconds, warmup=min(soak.WARMUP_S, max(1.0, s.soak_seconds)))

    def flat(before: float, after: float) -> bool:
        return after - before <= max(5.0, 0.05 * before)

    table.add(
        "f",
        f"ingest RSS before -> after {s.soak_seconds:g} s at {s.soak_devices:,} devices",
        f"{r['ingest_before']:.0f} -> {r['ingest_after']:.0f} MiB",
        "flat",
        flat(r["ingest_before"], r["ingest_after"]),
    )
    table.add(
        "f",
        f"web worker RSS before -> after (+ alerts to {soak.STREAM_CLIENTS} streams)",
        f"{r['web_before']:.0f} -> {r['web_after']:.0f} MiB",
        "flat",
        flat(r["web_before"], r["web_after"]),
    )


PARTS: dict[str, Callable[[Table, Sizes], None]] = {"a": part_a, "b": part_b, "c": part_cd, "e": part_e, "f": part_f}


def header(s: Sizes, quick: bool, started: float) -> list[str]:
    """What ran, on what."""
    mosquitto = subprocess.run([broker.mosquitto_binary(), "-h"], capture_output=True, text=True).stdout.split("\n")[0]
    mode = "QUICK (tiny sizes, a smoke test; not figures to size hardware by)" if quick else "full run"
    return [
        f"Vesper Console bench: {mode}; medians of {s.rounds} round(s); {time.time() - started:,.0f} s",
        f"machine: {os.cpu_count()} cores, shared by the broker, the ingest, the web worker and every load "
        f"generator; Python {platform.python_version()}, {mosquitto}, {platform.platform(terse=True)}",
    ]


NOTES = [
    "a: a backlog of unique transitions is queued for each consumer's persistent session, then drained;",
    "   rate = count / drain time. b: one raw-socket publisher sends each device's retained QoS 1 heartbeat",
    "   every 30 s; a heartbeat not applied yet when the window ends counts with its age. c, d: the device side",
    "   publishes alert transitions with its send time in the message; the stream clients are epoll loops on",
    "   raw sockets in two processes (10 clients for c); a step is held when every client got every event, in",
    "   order, none dropped, p99 <= 250 ms. e: sequential GETs on one keep-alive connection, the fleet written",
    "   into SQLite as the ingest leaves it. Each part alone: python -m bench.<ingest_throughput|",
    "   heartbeat_fleet|latency|stream_fanout|api_latency|soak> --help; scaling: bench.shared_subscription,",
    "   bench.stream_fanout --workers 2.",
]


def main(argv: list[str] | None = None) -> int:
    """Run every part (or --only some), then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, well under a minute (CI smoke test)")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 3, quick 1)")
    parser.add_argument("--soak-seconds", type=float, help="length of the (f) soak (default 600, quick 3)")
    parser.add_argument("--only", nargs="+", choices=["a", "b", "c", "d", "e", "f"], help="run only these parts")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.rounds:
        s = Sizes(**{**s.__dict__, "rounds": args.rounds})
    if args.soak_seconds is not None:
        s = Sizes(**{**s.__dict__, "soak_seconds": args.soak_seconds})
    raise_nofile()
    wanted = set(args.only or "abcdef")
    if "d" in wanted:
        wanted.add("c")  # c and d share one stack
    table = Table(verdicts=not args.quick)
    started = time.time()
    for name, part in PARTS.items():
        if name not in wanted:
            continue
        print(f"bench: part {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            part(table, s)
            print(f"bench: part {name} took {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
        except Exception as exc:  # one part failing still prints the others
            traceback.print_exc()
            table.add(name, "FAILED", type(exc).__name__)
            table.failed.append(f"{name}: {exc}")
    table.print(header(s, args.quick, started), NOTES)
    if table.failed:
        print("failed: " + "; ".join(table.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
