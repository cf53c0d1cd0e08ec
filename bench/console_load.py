"""The console's time to first rows beside a yardstick: a static page of the same rows, loaded the same way.

"0.7 s to first rows" says little across machines, so each run also loads, in the same Chromium on the
same machine, one HTML document that already holds the rows the console shows first. It is the
console's own page (fetched from the web process once) with its scripts and module preloads taken
out and the first page of `/api/devices?limit=100&sort=severity` (the request devices.js makes first)
rendered into `<tbody id="device-rows">` as device_rows.js's buildRow renders it: the same `<tr>`s,
cells and texts, with console.css and the favicon linked as before. The ratio console / static is
then the price of the page's scripts, its API request and its rendering in JS, on this machine.

The static page is served over HTTP from a ThreadingHTTPServer in this process on 127.0.0.1, not
from a file:// URL: like the console it then pays a loopback TCP connection and an HTTP request per
document and stylesheet, so the yardstick differs from the console only in what the page does, not
in how its bytes arrive (a file:// load skips the network stack and is no origin the page's
`/static/...` links resolve against). The gunicorn process is the product's and is left as it is.

Each load gets a fresh browser context (no cache, no cookies), is timed as bench/fleet_scale.py
times it (`page.goto`, then `#device-rows tr` present), and console and static loads alternate
after one unrecorded warm-up load of each; the figures are medians. Beside them, the same moment as the
page itself saw it (performance.now() when a MutationObserver, added before the page's own scripts,
first finds a row), which leaves out Playwright's round trips; there the static rows exist as soon as
they are parsed, before the stylesheet has loaded, so that ratio is the upper one. No ingest is started: the page
needs only the web process (its stream is served by the web process), and a liveness sweep would
move devices between loads.
Each is measured on a desktop screen (1400×900) and on a phone's (390×844, mobile, touch, 3× pixels; §12).
Run: .venv/bin/python -m bench.console_load [--devices 10000] [--loads 5]
"""

from __future__ import annotations

import argparse
import html
import json
import math
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

FIRST_PAGE = "/api/devices?limit=100&sort=severity"  # devices.js: PAGE = 100, the default sort, no cursor
ROWS = "#device-rows tr"
VIEWPORT = {"width": 1400, "height": 900}  # as bench/fleet_scale.py
DESKTOP: dict[str, Any] = {"viewport": VIEWPORT}
# A phone (§12): 390×844 CSS pixels, a mobile viewport with touch, 3 device pixels per CSS pixel.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
                         "device_scale_factor": 3}  # fmt: skip
# In both pages, before their own scripts: when a row first exists, in ms since navigation start. Playwright's
# own round trips (about 0.1 s here even for a selector already present) are in the timed figures, not in this.
OBSERVER = """new MutationObserver((_, seen) => {
  if (document.querySelector("#device-rows tr")) { window.__firstRows = performance.now(); seen.disconnect(); }
}).observe(document, { childList: true, subtree: true });"""
HEALTHS = ("ok", "warning", "critical", "offline", "unknown")  # console.js HEALTH_LABEL

Files = dict[str, tuple[bytes, str]]  # path -> (body, Content-Type)


def get(web_port: int, path: str) -> tuple[bytes, str, Any]:
    """One GET from the web process: (body, Content-Type, headers)."""
    request = urllib.request.Request(f"http://127.0.0.1:{web_port}{path}", headers={"Accept": "*/*"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read(), response.headers.get("Content-Type", "application/octet-stream"), response.headers


def relative_time(iso: str | None, now: float) -> str:
    """console.js relativeTime: "never", "just now", "12 s ago", "3 min ago", ..."""
    if not iso:
        return "never"
    try:
        then = datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return "–"
    s = max(0, math.floor(now - then + 0.5))  # Math.round
    if s < 2:
        return "just now"
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 48 * 3600:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def text_cell(name: str, value: Any) -> str:
    """device_rows.js textCell, open: a muted dash for an empty value."""
    if value is None or value == "":
        return f'<td class="{name} muted">–'
    return f'<td class="{name}">{html.escape(str(value))}'


def name_cell(device: dict[str, Any]) -> str:
    """device_rows.js nameCell: the name, then the tags."""
    tags = device.get("tags") if isinstance(device.get("tags"), list) else []
    cell = text_cell("c-name", device.get("name"))
    if tags:
        cell += ' <span class="tags">' + "".join(f'<span class="tag">{html.escape(str(t))}</span>' for t in tags)
        cell += "</span>"
    return cell + "</td>"


def playback_html(playback: Any) -> str:
    """console.js playbackEl: idle, or the melody playing."""
    if not isinstance(playback, dict) or not playback.get("active"):
        return '<span class="muted">idle</span>'
    melody = html.escape(str(playback.get("melody_uid") or "playing"))
    icon = '<span class="play-icon" aria-hidden="true"></span>'
    return f'<span class="playing">{icon}<span class="mono">{melody}</span></span>'


def row_html(device: dict[str, Any], now: float) -> str:
    """device_rows.js buildRow as HTML: the same cells, classes and texts."""
    esc = html.escape
    raw = str(device.get("health"))
    health = raw if raw in HEALTHS else "unknown"
    liveness = device.get("liveness")
    alive = f' data-liveness="{esc(liveness)}">{esc(liveness)}' if liveness is not None else ">"
    seen = device.get("last_seen")
    stamp = f' datetime="{esc(seen)}" title="{esc(seen)}"' if seen else ' title=""'
    alerts = device.get("active_alerts") or 0
    cells = [
        f'<td class="c-dot"><span class="dot" data-health="{health}" title="{health}" aria-hidden="true"></span></td>',
        f'<td class="c-id"><a class="mono" href="/devices/{esc(quote(device["id"], safe="-_.!~*()"))}">'
        f"{esc(device['id'])}</a></td>",
        name_cell(device),
        text_cell("c-site", device.get("site")) + "</td>",
        f'<td class="c-health"><span class="badge" data-health="{health}">{health}</span></td>',
        f'<td class="c-liveness"><span class="liveness"{alive}</span></td>',
        f'<td class="c-seen"><time{stamp} class="rel">{relative_time(seen, now)}</time></td>',
        f'<td class="c-playback">{playback_html(device.get("playback"))}</td>',
        f'<td class="c-alerts"><span class="{"count-pill" if alerts else "muted"}" data-health="{esc(raw)}">'
        f"{alerts}</span></td>",
    ]
    return f'<tr data-device-id="{esc(device["id"])}" data-health="{esc(raw)}">{"".join(cells)}</tr>'


def replace_once(old: str, new: str, text: str) -> str:
    """str.replace of a text that must occur exactly once: the console's template changed if it does not."""
    if (n := text.count(old)) != 1:
        raise RuntimeError(f"the console page has {n} of {old!r}, expected 1")
    return text.replace(old, new)


def static_site(web_port: int) -> tuple[Files, int]:
    """The console's page with its first rows rendered in and no script, and the files it links: (files, rows)."""
    body, _, headers = get(web_port, FIRST_PAGE)
    devices = [d for d in json.loads(body) if isinstance(d, dict) and isinstance(d.get("id"), str)]
    now = time.time()
    page = get(web_port, "/")[0].decode()
    page = re.sub(r"\s*<script\b[^>]*>.*?</script>", "", page, flags=re.S)
    page = re.sub(r'\s*<link rel="modulepreload"[^>]*>', "", page)
    rows = "".join(row_html(device, now) for device in devices)
    page = replace_once('<tbody id="device-rows"></tbody>', f'<tbody id="device-rows">{rows}</tbody>', page)
    if devices:  # as devices.js leaves the page once rows are shown
        total = int(headers.get("X-Total-Count", len(devices)))
        page = replace_once('id="devices-empty"', 'id="devices-empty" hidden', page)
        status = f"Showing 1–{len(devices):,} of {total:,}"
        page = replace_once(">Loading…<", f">{status}<", page)
    if "<script" in page:
        raise RuntimeError("a script is left in the static page")
    files: Files = {"/": (page.encode(), "text/html; charset=utf-8")}
    for path in sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', page))):
        asset, kind, _ = get(web_port, path)
        files[path] = (asset, kind)
    return files, len(devices)


def serve(files: Files) -> ThreadingHTTPServer:
    """Serve `files` on a free port of 127.0.0.1 from a daemon thread (HTTP/1.1, keep-alive, as gunicorn)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body, kind = files.get(self.path.split("?", 1)[0], (b"", "text/plain"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            """Quiet: one line per request would only slow the loads down."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="static-page", daemon=True).start()
    return server


def first_rows(browser: Any, url: str, device: dict[str, Any]) -> tuple[float, int, float]:
    """One load in a fresh context: (seconds from navigation to the first row, rows shown then, in-page seconds)."""
    context = browser.new_context(**device)
    try:
        context.add_init_script(OBSERVER)
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(ROWS, timeout=30_000)
        elapsed = time.perf_counter() - t0
        rows = page.locator(ROWS).count()
        return elapsed, rows, page.wait_for_function("() => window.__firstRows").json_value() / 1000
    finally:
        context.close()


def measure(web_port: int, loads: int = 5, device: dict[str, Any] | None = None) -> dict[str, float]:
    """Medians of `loads` console and static-page loads, alternating, after a warm-up of each (DESKTOP or PHONE)."""
    device = device or DESKTOP
    from playwright.sync_api import sync_playwright

    from harness.chromium import CHROMIUM, CHROMIUM_ARGS

    files, static_rows = static_site(web_port)
    server = serve(files)
    urls = {"console": f"http://127.0.0.1:{web_port}/", "static": f"http://127.0.0.1:{server.server_port}/"}
    results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in urls}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                for url in urls.values():
                    first_rows(browser, url, device)  # warm-up: renderer start, the worker's first requests
                for _ in range(loads):
                    for name, url in urls.items():
                        results[name].append(first_rows(browser, url, device))
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
    figures: dict[str, float] = {"loads": loads, "static_rows": static_rows}
    for name, runs in results.items():
        times = [t for t, _, _ in runs]
        figures[f"{name}_first_rows_s"] = statistics.median(times)
        figures[f"{name}_min_s"], figures[f"{name}_max_s"] = min(times), max(times)
        figures[f"{name}_in_page_s"] = statistics.median(t for _, _, t in runs)
    figures["rows"] = min(n for _, n, _ in results["console"])
    figures["ratio"] = figures["console_first_rows_s"] / figures["static_first_rows_s"]
    figures["in_page_ratio"] = figures["console_in_page_s"] / figures["static_in_page_s"]
    return figures


def main(argv: list[str] | None = None) -> int:
    """Seed a fleet, start the web process, print the console's first rows beside the static page's."""
    from bench.api_latency import seed
    from bench.common import Stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=5, help="loads of each page (after one warm-up of each)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vesper-console-load-") as tmp:
        stack = Stack(Path(tmp), web={"workers": 1})
        try:
            seed(stack.db, args.devices, random.Random(7))
            stack.web()
            found = {name: measure(stack.web_port, args.loads, device) for name, device in SCREENS.items()}
        finally:
            stack.close()
    for name, r in found.items():
        print(f"{name}: " + report(args.devices, args.loads, r))
    return 0


SCREENS = {"desktop 1400x900": DESKTOP, "phone 390x844": PHONE}


def report(devices: int, loads: int, r: dict[str, float]) -> str:
    """One line of figures of a screen's measure."""
    parts = [
        f"{devices:,} devices: console first rows {r['console_first_rows_s']:.3f} s ({r['rows']:.0f} rows)",
        f"static page of the same {r['static_rows']:.0f} rows {r['static_first_rows_s']:.3f} s",
        f"ratio {r['ratio']:.1f} (medians of {loads} alternating loads in fresh contexts, ranges "
        f"{r['console_min_s']:.3f}-{r['console_max_s']:.3f} s and {r['static_min_s']:.3f}-{r['static_max_s']:.3f} s)",
        f"in the page from navigation start {r['console_in_page_s']:.3f} s and {r['static_in_page_s']:.3f} s, "
        f"ratio {r['in_page_ratio']:.1f}; one gevent worker, this machine",
    ]
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
