"""Shared pieces of the benchmarks: a real broker, real processes, and process readings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vesper_sim import broker

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident set size in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Stack:
    """A broker on a free port and Vesper processes with their own config, in a temp directory."""

    def __init__(self, tmp: Path, **sections: dict[str, object]) -> None:
        self.tmp = tmp
        self.port = broker.free_port()
        self.web_port = broker.free_port()
        self.broker = broker.start(tmp / "mosquitto", self.port)
        self.config = tmp / "bench.toml"
        self.db = tmp / "vesper.db"
        base: dict[str, dict[str, object]] = {
            "mqtt": {"port": self.port, "client_id": "bench-ingest"},
            "database": {"path": str(self.db)},
            "ingest": {"summary_interval_s": 600.0},
            # The benches count every transition's event: no flap and no flood limit (§16) may hide one.
            "alerts": {"flap_transitions": 0, "max_events_per_device_per_minute": 10**9},
            "web": {"bind": f"127.0.0.1:{self.web_port}"},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        lines = []
        for name, values in base.items():
            lines.append(f"[{name}]")
            lines += [f"{k} = {v!r}".replace("'", '"') for k, v in values.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Start a process with this stack's config; output to <name>.log."""
        env = {**os.environ, "VESPER_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        with open(self.tmp / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        """What a process printed."""
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, text: str, timeout: float = 30) -> None:
        """Wait for a line in a process's output."""
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never printed {text!r}:\n{self.log(name)}")
            time.sleep(0.05)

    def ingest(self) -> subprocess.Popen[bytes]:
        """Start the real ingest and wait until it is connected."""
        proc = self.start("ingest", [sys.executable, "-m", "vesper_ingest"])
        self.wait_log("ingest", "connected to")
        return proc

    def web(self) -> subprocess.Popen[bytes]:
        """Start the real web process (gunicorn, gevent) and wait until it answers."""
        import urllib.request

        args = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "vesper_web:create_app()"]
        proc = self.start("web", args)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/healthz", timeout=1):
                    return proc
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        """Stop everything."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.broker.terminate()
        self.broker.wait(10)
