"""`python -m bench --quick` runs every part against real processes and prints the one table (no timing asserted).

Every section shows at least one figure beside its same-run yardstick, with the ratio of the two.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_prints_the_table() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"machine: \d+ cores", out), out
    titles = r"^\s+figure\s+value\s+yardstick \(same run\)\s+ratio\s+target\s+generators \(% of a core\)"
    assert re.search(titles, out, re.MULTILINE), out
    for section in "abcdef":
        assert re.search(rf"^{section}  \S", out, re.MULTILINE), f"no row for part {section}:\n{out}"
        beside = rf"^{section}  .*\S  .*: .*\s\d+\.\d\d  "  # a figure, then 'yardstick: value', then the ratio
        assert re.search(beside, out, re.MULTILINE), f"no figure beside a yardstick in part {section}:\n{out}"
    assert "FAILED" not in out
    for check in ("zero loss: final state and events as published", "every event reached every client"):
        assert re.search(rf"^\w  +{check}\s+yes\b", out, re.MULTILINE), f"{check}: not yes\n{out}"


HISTORY_FIGURES = (
    "availability by site, last 30 days", "device history, 30 days", "incidents, first page", "problems, last 30 days",
    "GET /api/reports/availability", "GET /api/devices/", "size per million episodes",
)  # fmt: skip


def test_bench_history_quick_prints_each_engine_and_the_ingest() -> None:
    """`python -m bench.history --quick` (300 devices x 20 days): every row on both engines, the web's, the ingest's."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.history", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for engine in ("sqlite", "pg"):
        for figure in HISTORY_FIGURES:
            assert re.search(rf"^{engine} +{re.escape(figure)}.*\d", out, re.MULTILINE), f"{engine} {figure}:\n{out}"
    assert re.search(r"^ingest +drain of .* msg/s +history off: [\d,]+ msg/s +\d+\.\d\d", out, re.MULTILINE), out
    assert re.search(r"^ingest +every offline device back online +yes", out, re.MULTILINE), out
