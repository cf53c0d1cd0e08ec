"""The fleet at scale (§7): 100,000 devices through the real web process and headless Chromium, in one run.

Figures: the CSV import of the whole registry, the API p99s (`/api/devices?limit=100&sort=severity`
and `/api/summary`, the yardstick; beside them §12's sort=name and q pages: a common and a rare substring,
whose count stops at 1,000), and in the console: time to first rows, main-thread time per event at 100 events/s,
the JS heap, and the page's requests per second while the events arrive.
Run: .venv/bin/python -m bench.fleet_scale [--devices 100000] [--sites 400] [--requests 500] [--events 1000]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api_latency import seed, timed_get
from bench.common import Stack, percentile
from shared.config import MqttConfig
from shared.mqtt import make_client

SITES = 400
PATHS = {  # name: the GET measured
    "page": "/api/devices?limit=100&sort=severity",
    "summary": "/api/summary",
    "name": "/api/devices?limit=100&sort=name",
    "q_common": "/api/devices?limit=100&sort=severity&q=bell%2012",  # St Bell 12…: over a thousand match
    "q_rare": "/api/devices?limit=100&sort=severity&q=bell%2099999",  # one device: every row is read
}
SCREENSHOT = Path("/tmp/vesper-fleet-scale.png")


def registry_csv(ids: list[str], rng: random.Random, sites: int = SITES) -> bytes:
    """A registry for every device: a name, one of `sites` sites, two tags."""
    out = io.StringIO()
    out.write("id,name,site,tags,notes,heartbeat_timeout_s\n")
    for n, device_id in enumerate(ids):
        site = rng.randrange(sites)
        out.write(f"{device_id},St Bell {n} tower,Parish {site},region-{site % 12} ring-{n % 8},,\n")
    return out.getvalue().encode()


def import_seconds(port: int, body: bytes) -> tuple[float, dict[str, Any]]:
    """POST the CSV import once: (seconds to the answer, the answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/api/devices", body=body, headers={"Content-Type": "text/csv"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    elapsed = time.perf_counter() - t0
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"import: {response.status} {answer}")
    return elapsed, answer


def api_p99s(port: int, requests: int) -> dict[str, float]:
    """Sequential GETs on one keep-alive connection: p50 and p99 of each of PATHS, in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    figures = {}
    for name, path in PATHS.items():
        timed_get(conn, path)
        times = [timed_get(conn, path)[0] for _ in range(requests)]
        figures[f"{name}_p50_ms"] = percentile(times, 50) * 1000
        figures[f"{name}_p99_ms"] = percentile(times, 99) * 1000
    conn.close()
    return figures


def publish_events(stack: Stack, ids: list[str], events: int, rate: float, rng: random.Random) -> None:
    """Alert transitions over MQTT at `rate` per second (alternating WARNING and CLEARED per device)."""
    client = make_client(MqttConfig(port=stack.port), "bench-fleet-publisher")
    client.connect("127.0.0.1", stack.port)
    client.loop_start()
    states: dict[str, str] = {}
    start = time.monotonic()
    for n in range(events):
        device_id = rng.choice(ids[:2000])
        state = "CLEARED" if states.get(device_id) == "WARNING" else "WARNING"
        states[device_id] = state
        body = json.dumps({"subsystem": "Audio", "state": state, "msg": "bench"})
        client.publish(f"vesper/{device_id}/status/alerts", body, qos=1)
        delay = start + (n + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    client.loop_stop()
    client.disconnect()


def console(stack: Stack, ids: list[str], events: int, rng: random.Random) -> dict[str, float]:
    """Chromium on the device list: first rows, then main-thread time, heap and requests under 100 events/s."""
    from playwright.sync_api import sync_playwright

    from harness.chromium import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        requests: list[float] = []
        page.on("request", lambda r: requests.append(time.monotonic()) if "/api/" in r.url else None)
        t0 = time.perf_counter()
        page.goto(f"http://127.0.0.1:{stack.web_port}/")
        page.wait_for_selector("#device-rows tr", timeout=30_000)
        first_rows = time.perf_counter() - t0
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")

        def metric(name: str) -> float:
            return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == name)

        parts = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
        idle = {name: metric(name) for name in parts}
        page.wait_for_timeout(events * 10)  # as long again with no events: what the page costs at rest
        before = {name: metric(name) for name in parts}
        requests.clear()
        started = time.monotonic()
        publish_events(stack, ids, events, 100.0, rng)
        page.wait_for_timeout(2000)  # the coalesced re-reads after the last event
        window = time.monotonic() - started
        after = {name: metric(name) for name in parts}
        heap = metric("JSHeapUsedSize")
        page.screenshot(path=str(SCREENSHOT))
        browser.close()
    at_rest = {name: before[name] - idle[name] for name in parts}
    busy = {name: after[name] - before[name] - at_rest[name] * window / (events / 100.0) for name in parts}
    return {
        "first_rows_s": first_rows,
        "main_thread_ms_per_event": busy["TaskDuration"] * 1000 / events,
        "script_ms_per_event": busy["ScriptDuration"] * 1000 / events,
        "layout_style_ms_per_event": (busy["LayoutDuration"] + busy["RecalcStyleDuration"]) * 1000 / events,
        "heap_mib": heap / 2**20,
        "requests_per_s": len(requests) / window,
    }


def main(argv: list[str] | None = None) -> int:
    """Seed, import, measure; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=SITES, help="the registry's sites (§12: try 20000)")
    parser.add_argument("--requests", type=int, default=500, help="GETs of each API path")
    parser.add_argument("--events", type=int, default=1000, help="alert transitions at 100/s in the console step")
    args = parser.parse_args(argv)
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="vesper-fleet-") as tmp:
        stack = Stack(Path(tmp), web={"workers": 1})
        try:
            ids = seed(stack.db, args.devices, rng)
            stack.ingest()
            stack.web()
            imported, answer = import_seconds(stack.web_port, registry_csv(ids, rng, args.sites))
            api = api_p99s(stack.web_port, args.requests)
            page = console(stack, ids, args.events, rng)
        finally:
            stack.close()
    print(f"{args.devices:,} devices, one gevent worker, this machine")
    print(f"CSV import of {args.devices:,} lines: {imported:.2f} s ({answer['created']} created, "
          f"{answer['updated']} updated, {len(answer['rejected'])} rejected)")  # fmt: skip
    print(f"GET /api/devices?limit=100&sort=severity: p50 {api['page_p50_ms']:.1f} ms, p99 {api['page_p99_ms']:.1f} ms")
    for name in PATHS:
        if name != "page":
            print(f"GET {PATHS[name]}: p50 {api[f'{name}_p50_ms']:.1f} ms, p99 {api[f'{name}_p99_ms']:.1f} ms")
    print(f"console: first rows {page['first_rows_s']:.2f} s after navigation; "
          f"{page['main_thread_ms_per_event']:.2f} ms main thread per event at 100 events/s "
          f"(script {page['script_ms_per_event']:.2f}, layout and style {page['layout_style_ms_per_event']:.2f}); "
          f"JS heap {page['heap_mib']:.1f} MiB; {page['requests_per_s']:.1f} API requests/s")  # fmt: skip
    print(f"screenshot: {SCREENSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
