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
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

from bench import parts, trust_banner
from bench.parts import Sizes
from bench.sse_load import raise_nofile
from bench.table import Table
from vesper_sim import broker

FULL = Sizes(
    rounds=3,
    messages=20_000,
    fleet=100_000,
    fleet_seconds=15.0,
    fleet_warmup=5.0,
    fleet_search=(0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85),
    drain=50_000,
    latency_rate=1000.0,
    latency_seconds=20.0,
    fanout_clients=(1000, 5000),
    fanout_targets=(25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000),
    fanout_fallback=10_000,
    fanout_seconds=8.0,
    api_devices=10_000,
    api_lists=50,
    api_alerts=500,
    console_loads=11,
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
    drain=2_000,
    latency_rate=200.0,
    latency_seconds=2.0,
    fanout_clients=(20, 100),
    fanout_targets=(500, 2000),
    fanout_fallback=200,
    fanout_seconds=2.0,
    api_devices=1_000,
    api_lists=5,
    api_alerts=50,
    console_loads=1,
    soak_seconds=3.0,
    soak_devices=5_000,
)


PARTS: dict[str, Callable[[Table, Sizes], None]] = {
    "a": parts.part_a,
    "b": parts.part_b,
    "c": parts.part_cd,
    "e": parts.part_e,
    "f": parts.part_f,
    "g": trust_banner.part,
}


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
    "Every figure sits beside a yardstick measured in the same run on the same machine, and the ratio is",
    "figure / yardstick: a ratio travels between machines where the absolute figures do not. Latency bounds",
    "(what a user waits) stay absolute. Generators: the busiest load process's share of one core while the",
    "figure was measured; over 80 % and the verdict is 'not measurable here'. Latency ratios compare p99s",
    "in b and c (thousands of samples a round; each the median of its rounds' own) and p50s in d and e (a",
    "round's p99 of 50 requests is its slowest one); at d's top step a round's length feeds its next batch",
    "and both latencies sit near the spacing's 100 ms cap, so that row has none. c's ingest row is a breakdown:",
    "its tail is the ingest's own commits', which nothing else in the run shares (a and b measure the ingest).",
    "a: a backlog of unique transitions is queued for each consumer's persistent session, then drained; rate",
    "   = count / drain time. b: one raw-socket publisher sends each device's retained QoS 1 heartbeat every",
    "   30 s, a bare paho subscriber (its own process) takes the same stream meanwhile; a heartbeat not",
    "   applied yet when the window ends counts with its age; the search's yardstick: a bare paho subscriber",
    "   draining queued heartbeats; its steps are heartbeat rates of 0.25, 0.35, ... of that drain (halfway",
    "   back at the edge), so a step's ratio is its load in the machine's units and its verdict the finding.",
    "   c: the device side publishes alert transitions with its send time in the message; a bare paho",
    "   subscriber of the published topic (the ingest's and broker's share: its ratio is what the web adds)",
    "   and of the device topic (the broker's own) runs meanwhile; 10 stream clients. d:",
    "   stream clients are epoll loops on raw sockets in two processes; a step is held when every client got",
    "   every event, in order, none dropped, p99 <= 250 ms; at the best held step the same events go to as",
    "   many clients of a minimal gevent server writing preformatted frames (bench/fanout_floor.py, the",
    "   Python floor) and to as many raw MQTT subscribers of Mosquitto (the C limit; its CPU includes serving",
    "   the ingest). e: sequential GETs on one keep-alive connection beside the same store calls in-process",
    "   on one connection (and each alerts read beside a GET /healthz on the same connection: the server's",
    "   floor); the console in headless Chromium beside a static page of the same rows from a plain HTTP",
    "   server (bench/console_load.py), medians of alternating fresh loads. f: RSS after the soak against its",
    "   own RSS before. g: the ingest SIGSTOPped and SIGCONTed under an open device list in Chromium, the",
    "   banner's times beside web.stale_after_s (SPEC §11: shown within it + 5 s, gone within 5 s).",
    "   Each part alone: python -m bench.<ingest_throughput|heartbeat_fleet|latency|",
    "   stream_fanout|fanout_floor|api_latency|console_load|soak|trust_banner> --help.",
]


def main(argv: list[str] | None = None) -> int:
    """Run every part (or --only some), then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, well under a minute (CI smoke test)")
    parser.add_argument("--rounds", type=int, help="rounds per figure (default 3, quick 1)")
    parser.add_argument("--soak-seconds", type=float, help="length of the (f) soak (default 600, quick 3)")
    parser.add_argument("--only", nargs="+", choices=["a", "b", "c", "d", "e", "f", "g"], help="run only these parts")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    if args.rounds:
        s = Sizes(**{**s.__dict__, "rounds": args.rounds})
    if args.soak_seconds is not None:
        s = Sizes(**{**s.__dict__, "soak_seconds": args.soak_seconds})
    raise_nofile()
    wanted = set(args.only or "abcdefg")
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
