"""The ingest's own cost per message, in process: Ingest.process on batches of alert transitions, no broker.

CPU time of the worker's part alone (classify, apply, commit, encode for the sinks), so it can be
compared across commits on a busy machine: run it from two checkouts, interleaved.
Run: .venv/bin/python -m bench.ingest_process [--messages 20000] [--batch 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shared import config
from vesper_ingest.batch import Inbound
from vesper_ingest.service import Ingest


def one_round(messages: int, batch: int) -> float:
    """µs of CPU per message for one fresh database."""
    with tempfile.TemporaryDirectory(prefix="vesper-process-") as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(f'[mqtt]\nport = 1\n[database]\npath = "{tmp}/v.db"\n')
        now = [1_800_000_000.0]
        ingest = Ingest(config.load(path), clock=lambda: now[0])
        ingest.connected()
        items = []
        for i in range(messages):
            body = {"subsystem": "Audio", "state": "CRITICAL" if i % 2 else "WARNING", "msg": f"m {i}"}
            topic = f"vesper/dev-{i % 500}/status/alerts"
            items.append(Inbound(topic, json.dumps(body).encode(), False, i % 65535 + 1, 1, ingest.generation))
        start = time.process_time()
        for i in range(0, messages, batch):
            ingest.process(items[i : i + batch])
        spent = time.process_time() - start
        ingest.writer.close()
    return spent / messages * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rounds = [one_round(args.messages, args.batch) for _ in range(args.rounds)]
    print(f"ingest processing, {args.messages:,} alert transitions in batches of {args.batch}: "
          f"{statistics.median(rounds):.1f} µs CPU per message (median of {args.rounds}: "
          f"{', '.join(f'{r:.0f}' for r in rounds)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
