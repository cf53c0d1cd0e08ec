"""Big requests do not stall a worker (§16): a 10 MiB CSV import and /healthz on one gevent worker of real gunicorn."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

from shared import config as config_mod

MIB = 1024 * 1024
HEALTHZ_BOUND_S = 1.0  # the spec's bound
PROBE_EVERY_S = 0.05
IMPORT_WAIT_S = 120.0  # a busy 2-core machine; the import itself takes a few seconds
NOTES = "notes " * 8
BAD_EVERY = 1000  # one line in a thousand is refused, so the answer's per-line results are checked too


def big_csv(size: int = 10 * MIB - 4096) -> tuple[bytes, int, list[int]]:
    """A registry import of `size` bytes at most: (body, valid lines, numbers of the lines with a bad id)."""
    lines = ["id,name,site,tags,notes,heartbeat_timeout_s\n"]
    total, valid, bad = len(lines[0]), 0, []
    for n in range(1, 1_000_000):
        if n % BAD_EVERY == 0:
            line = f"bad id {n},Bell,Depot,north,,90\n"
        else:
            line = f"bell-{n:06d},Bell {n} of the north tower,Site {n % 97},north t{n % 13},{NOTES},{60 + n % 90}\n"
        if total + len(line) > size:
            break
        lines.append(line)
        total += len(line)
        if n % BAD_EVERY == 0:
            bad.append(n + 1)  # the header is line 1
        else:
            valid += 1
    return "".join(lines).encode(), valid, bad


def post_import(bind: str, body: bytes, answer: dict[str, Any]) -> None:
    """POST the CSV as the console does; the status, JSON answer and duration go into `answer`."""
    headers = {"Content-Type": "text/csv", "X-Requested-With": "vesper-console"}
    request = urllib.request.Request(f"http://{bind}/api/devices", data=body, method="POST", headers=headers)
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=IMPORT_WAIT_S) as response:
        answer.update(status=response.status, body=json.load(response), seconds=time.monotonic() - started)


def healthz_seconds(bind: str) -> float:
    """One /healthz on a connection of its own: how long until its whole answer was read."""
    started = time.monotonic()
    with urllib.request.urlopen(f"http://{bind}/healthz", timeout=IMPORT_WAIT_S) as response:
        assert response.status == 200 and json.load(response)["status"] == "ok"
    return time.monotonic() - started


def test_healthz_answers_within_a_second_during_a_10_mib_import(make_config, start_web) -> None:
    cfg = make_config(web={"workers": 1})
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    body, valid, bad = big_csv()
    assert 10 * MIB - 64 * 1024 < len(body) <= 10 * MIB

    answer: dict[str, Any] = {}
    importing = threading.Thread(target=post_import, args=(bind, body, answer), daemon=True)
    importing.start()
    latencies = []
    while importing.is_alive():  # the same (only) worker serves both
        latencies.append(healthz_seconds(bind))
        time.sleep(PROBE_EVERY_S)  # a monitor's pace, not a flood that competes with the import for the CPU
    importing.join()

    assert answer.get("status") == 200, answer
    assert answer["body"]["created"] == valid and answer["body"]["updated"] == 0
    assert [r["line"] for r in answer["body"]["rejected"]] == bad
    assert all(r["error"].startswith("id: ") for r in answer["body"]["rejected"])
    worst = max(latencies)
    assert worst < HEALTHZ_BOUND_S, f"/healthz took {worst:.2f} s (of {len(latencies)}) during the import"
    assert len(latencies) >= 5, f"only {len(latencies)} /healthz during a {answer['seconds']:.1f} s import"
    print(f"import {answer['seconds']:.2f} s, {len(latencies)} /healthz, the slowest {worst * 1000:.0f} ms")


def get_csv(bind: str, answer: dict[str, Any]) -> None:
    """GET the whole fleet as CSV, as the list page's export does; the status, lines and duration go into `answer`."""
    started = time.monotonic()
    with urllib.request.urlopen(f"http://{bind}/api/devices?format=csv", timeout=IMPORT_WAIT_S) as response:
        answer.update(status=response.status, lines=response.read().decode().splitlines())
    answer["seconds"] = time.monotonic() - started


def test_healthz_answers_within_a_second_during_a_whole_fleet_csv_export(make_config, start_web) -> None:
    """The export of ~116,000 devices is built off the worker's loop (§12): /healthz keeps its bound meanwhile."""
    cfg = make_config(web={"workers": 1})
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    body, valid, _ = big_csv()
    imported: dict[str, Any] = {}
    post_import(bind, body, imported)
    assert imported["body"]["created"] == valid

    answer: dict[str, Any] = {}
    exporting = threading.Thread(target=get_csv, args=(bind, answer), daemon=True)
    exporting.start()
    latencies = []
    while exporting.is_alive():
        latencies.append(healthz_seconds(bind))
        time.sleep(PROBE_EVERY_S)
    exporting.join()

    assert answer.get("status") == 200, answer
    assert len(answer["lines"]) == valid + 1 and answer["lines"][0].startswith("id,name,site,tags")
    worst = max(latencies)
    assert worst < HEALTHZ_BOUND_S, f"/healthz took {worst:.2f} s (of {len(latencies)}) during the export"
    # Built on the loop, one /healthz waited out the whole export (961 ms, the only one answered meanwhile).
    assert len(latencies) >= 3, f"only {len(latencies)} /healthz during a {answer['seconds']:.1f} s export"
    seconds, slowest = answer["seconds"], worst * 1000
    print(f"export of {valid} devices {seconds:.2f} s, {len(latencies)} /healthz, the slowest {slowest:.0f} ms")
