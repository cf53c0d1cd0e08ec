"""Which MQTT brokers from Debian 12's packages keep Vesper's flow through a failure, measured.

For each broker that is installed (Mosquitto, NATS with JetStream, RabbitMQ's MQTT plugin; see
bench/broker_runs.py for their exact settings) a publisher sends 20,000 QoS 1 messages over 200 devices
(topic per device, payload = the device's sequence number) while a consumer shaped like the ingest takes
them: its own process, persistent session (clean_session=False, MQTT 3.1.1, fixed client id), manual acks
sent by a worker thread only after the message is "processed" (a line in a file), acks of an earlier
connection dropped. Mid-stream, one failure:
  (a) the consumer is SIGKILLed (no DISCONNECT) and started again 1 s later with the same client id;
  (b) the broker is SIGKILLed and started again on the same data (Mosquitto twice: autosave every 1 s,
      the project's setting, and every 1800 s, Mosquitto's default);
  (c) where the package can cluster (NATS JetStream, RabbitMQ quorum queues; 3 nodes on loopback), the
      consumer's node is SIGKILLed and the consumer reconnects to another node.
Counted per device, over the messages the broker PUBACKed to the publisher: lost (never processed),
duplicated (processed again), reordered (first processed after a higher sequence number of its device);
with the times from the restart to the first redelivered message and to the first message at all.
Run: .venv/bin/python -m bench.brokers [--only mosquitto nats rabbitmq] [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import broker_runs as runs

DEVICES, RATE, FAULT_AT = 200, 4000.0, 0.4  # the fault comes after 40 % of the messages
Fault = Callable[[], tuple[float, float, float | None]]  # does the damage: (kill time, restart time, seconds to up)
Row = dict[str, Any]  # one row of the table
Part = Callable[[Any, Path, int], Row]  # (broker, its directory, messages) -> its row


class Publisher:
    """QoS 1 publisher of per-device sequence numbers; paho's on_publish says which the broker PUBACKed."""

    def __init__(self, port: int) -> None:
        """Connected to loopback:port, with an unbounded queue (paho keeps and resends across reconnects)."""
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-brokers-pub")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.5, 2)
        self.sent: dict[int, tuple[str, int]] = {}
        self.acked_mids: set[int] = set()
        self.client.on_publish = lambda c, u, mid, rc, p: self.acked_mids.add(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def run(self, total: int, fault: Fault) -> tuple[threading.Thread, list[tuple[float, float, float | None]]]:
        """Publish `total` messages at RATE per second; start `fault` in a thread after FAULT_AT of them."""
        start, times, thread = time.monotonic(), [], threading.Thread(target=lambda: times.append(fault()))
        for i in range(total):
            device, seq = f"d{i % DEVICES:03d}", i // DEVICES
            self.sent[self.client.publish(f"vesper/{device}/status/alerts", str(seq), qos=1).mid] = (device, seq)
            if i == int(total * FAULT_AT):
                thread.start()
            if i % 50 == 0:
                time.sleep(max(0.0, start + i / RATE - time.monotonic()))
        return thread, times

    def acked(self) -> set[tuple[str, int]]:
        """(device, sequence number) of every message the broker PUBACKed."""
        return {self.sent[mid] for mid in list(self.acked_mids) if mid in self.sent}

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Tally:
    """Lost, duplicated and reordered messages, counted over a consumer's lines."""

    kill_t: float
    restart_t: float
    counts: dict[str, int] = field(default_factory=lambda: {"dup": 0, "reordered": 0, "redelivered": 0})
    devices: dict[str, set[str]] = field(default_factory=lambda: {"dup": set(), "reordered": set(), "lost": set()})
    seen: set[tuple[str, int]] = field(default_factory=set)
    top: dict[str, int] = field(default_factory=dict)
    first_redelivery: float | None = None
    first_message: float | None = None
    session_present: str = "?"
    connected: dict[int, float] = field(default_factory=dict)  # connection number -> when

    def add(self, words: list[str]) -> None:
        """Count one line of the consumer's file."""
        t = float(words[1])
        if words[0] == "S":
            self.connected = {}  # a new consumer process numbers its connections from 1 again
        elif words[0] == "C":
            self.connected[int(words[3])] = t
            if t >= self.restart_t and self.session_present == "?":  # the first connection after the restart
                self.session_present = "yes" if words[2] == "1" else "no"
        elif words[0] == "M" and len(words) == 6:
            self.message(t, words[2], int(words[3]), words[4] == "1", self.connected.get(int(words[5]), 0.0))

    def message(self, t: float, device: str, seq: int, dup_flag: bool, connected_at: float) -> None:
        """Count one processed message that arrived at `t` on a connection made at `connected_at`."""
        key = (device, seq)
        kind = "dup" if key in self.seen else "reordered" if seq < self.top.get(device, -1) else ""
        if kind:
            self.counts[kind] += 1
            self.devices[kind].add(device)
        if connected_at >= self.restart_t:  # a connection made after the restart
            self.first_message = t - self.restart_t if self.first_message is None else self.first_message
            if key in self.seen or dup_flag:
                self.counts["redelivered"] += 1
                self.first_redelivery = self.first_redelivery or t - self.restart_t
        self.seen.add(key)
        self.top[device] = max(self.top.get(device, -1), seq)


def wait_for(done: Callable[[], bool], seconds: float) -> None:
    """Poll `done` every 0.25 s until it is true or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.25)


def run_part(b: runs.Broker, part: str, consumer: runs.Consumer, pub_port: int, fault: Fault, total: int) -> Row:
    """Start the consumer, publish `total` messages with `fault` on the way, wait for redeliveries, count."""
    began = time.monotonic()
    consumer.start()
    wait_for(lambda: any(w[0] == "C" for w in consumer.lines()), 30)
    time.sleep(1.5)  # the session is older than one Mosquitto autosave, as an ingest's would be
    publisher = Publisher(pub_port)
    try:
        thread, times = publisher.run(total, fault)
        thread.join()
        wait_for(lambda: len(publisher.acked_mids) >= total, b.settle_s)
        acked = publisher.acked()
        wait_for(lambda: acked <= consumer.processed(), b.settle_s)
        time.sleep(2.0)  # late duplicates
    finally:
        publisher.close()
        consumer.kill()
    if not times:
        raise RuntimeError("the fault did not complete (see above)")
    tally = Tally(*times[0][:2])
    for words in consumer.lines():
        tally.add(words)
    lost = acked - tally.seen
    tally.devices["lost"] = {device for device, _ in lost}
    return {
        "broker": b.label, "part": part, "published": total, "pubacked": len(acked), "lost": len(lost),
        **tally.counts, **{f"{k}_devices": len(v) for k, v in tally.devices.items()},
        "first_redelivery": tally.first_redelivery, "first_message": tally.first_message,
        "session": tally.session_present, "up": times[0][2], "seconds": time.monotonic() - began,
    }  # fmt: skip


def consumer_killed(b: runs.Broker, tmp: Path, total: int) -> Row:
    """(a): SIGKILL the consumer mid-stream, start it again 1 s later with the same client id."""
    consumer = runs.Consumer([b.nodes[0].port], tmp / "a.txt")

    def fault() -> tuple[float, float, None]:
        kill_t = time.time()
        consumer.kill()
        time.sleep(1.0)
        restart_t = time.time()
        consumer.start()
        return kill_t, restart_t, None

    return run_part(b, "a consumer killed", consumer, b.nodes[0].port, fault, total)


def broker_killed(b: runs.Broker, tmp: Path, total: int) -> Row:
    """(b): SIGKILL the broker mid-stream and start it again at once on the same data."""
    node = b.nodes[0]

    def fault() -> tuple[float, float, float]:
        kill_t = time.time()
        node.kill()
        restart_t = time.time()
        node.start()
        runs.wait_ready(node, 90)
        return kill_t, restart_t, time.time() - restart_t

    return run_part(b, "b broker killed", runs.Consumer([node.port], tmp / "b.txt"), node.port, fault, total)


def node_killed(b: runs.Broker, tmp: Path, total: int) -> Row:
    """(c): SIGKILL the consumer's node of a 3-node cluster; it reconnects to another; the publisher uses a third."""
    first, second, third = b.nodes

    def fault() -> tuple[float, float, None]:
        kill_t = time.time()
        first.kill()
        return kill_t, kill_t, None

    consumer = runs.Consumer([first.port, second.port], tmp / "c.txt")
    return run_part(b, "c node killed", consumer, third.port, fault, total)


def rabbit_running_nodes(node: runs.Node) -> list[str]:
    """The cluster's running nodes as `node` sees them (rabbitmqctl cluster_status)."""
    env = node.env or {}
    argv = [str(runs.RABBIT_BIN / "rabbitmqctl"), "-n", env.get("RABBITMQ_NODENAME", ""), "cluster_status"]
    out = subprocess.run([*argv, "--formatter", "json"], env=env, capture_output=True, text=True, timeout=60)
    status: dict[str, Any] = json.loads(out.stdout or "{}")
    return list(status.get("running_nodes", []))


def with_broker(make: Callable[[Path], runs.Broker], part: Part, work: Path, total: int) -> Any:
    """Start a fresh broker in `work`, run one part on it, stop it; a failure becomes a row saying so."""
    work.mkdir(parents=True)
    b = make(work)
    try:
        b.start()
        if "rabbitmq" in b.label and len(b.nodes) > 1 and len(running := rabbit_running_nodes(b.nodes[0])) != 3:
            raise RuntimeError(f"the RabbitMQ cluster has not formed: running nodes {running}")
        return b, part(b, work, total)
    except Exception as error:  # one broker's failure must not hide the others' rows
        return b, {"broker": b.label, "part": part.__name__, "error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        b.close()


def plan(name: str, rounds: int) -> list[tuple[Callable[[Path], runs.Broker], Part]]:
    """The (broker, part) pairs to run for one broker family, each on a fresh broker; (b) `rounds` times, as
    what a broker crash costs depends on where in its save or flush cycle it dies."""
    if name == "mosquitto":
        return [(runs.mosquitto, consumer_killed), *[(runs.mosquitto, broker_killed)] * rounds,
                (lambda d: runs.mosquitto(d, 1800), broker_killed)]  # fmt: skip
    family = runs.nats if name == "nats" else runs.rabbitmq
    return [(family, consumer_killed), *[(family, broker_killed)] * rounds, (lambda d: family(d, 3), node_killed)]


def fmt(value: Any) -> str:
    """A table cell: seconds with 2 decimals, '-' for nothing."""
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict[str, Any]], brokers: dict[str, runs.Broker]) -> None:
    """The results as one fixed-width table, then each broker's version and settings."""
    cols = ["broker", "part", "published", "pubacked", "lost", "dup", "reordered", "redelivered", "first_redelivery",
            "first_message", "session", "up", "seconds"]  # fmt: skip
    heads = ["broker", "part", "sent", "PUBACKed", "lost (dev)", "dup (dev)", "reord (dev)", "redelivered",
             "restart→redeliv s", "restart→1st msg s", "session kept", "broker up s", "part s"]  # fmt: skip
    cells = []
    for row in rows:
        if "error" in row:
            cells.append([row["broker"], row["part"], "error: " + row["error"]] + [""] * (len(cols) - 3))
            continue
        cell = [fmt(row.get(c)) for c in cols]
        for i, c in ((4, "lost"), (5, "dup"), (6, "reordered")):
            cell[i] = f"{row[c]} ({row[c + '_devices']})"
        cells.append(cell)
    widths = [max([len(h), *(len(c[i]) for c in cells if not c[2].startswith("error"))]) for i, h in enumerate(heads)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    for cell in cells:
        print("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
    print(
        "\nlost: PUBACKed to the publisher, never processed; dup: processed again; reord: first processed after a"
        " higher number of its device; redelivered: came again on a connection made after the restart (DUP flag"
        " or already processed); restart = the consumer's (a), the broker's (b), the node's kill (c); session"
        " kept: the first connection after it had session present; broker up: from restart to taking MQTT again\n"
    )
    for b in brokers.values():
        print(f"{b.label}: version {b.version}; {b.settings}")


def main(argv: list[str] | None = None) -> None:
    """Run every part for every installed broker and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["mosquitto", "nats", "rabbitmq"])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="how many times to run (b), each on a fresh broker")
    args = parser.parse_args(argv)
    rows, brokers, began = [], {}, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vesper-brokers-") as name:
        for family in args.only:
            if not runs.available().get(family):
                print(f"{family}: not installed, skipped", flush=True)
                continue
            for i, (make, part) in enumerate(plan(family, args.rounds)):
                b, row = with_broker(make, part, Path(name) / f"{family}-{i}", args.messages)
                brokers[b.label] = b
                rows.append(row)
                print(f"  {row['broker']} / {row['part']}: {row.get('error') or fmt(row['seconds'])}", flush=True)
    print(f"\n{args.messages:,} QoS 1 messages over {DEVICES} devices at {RATE:.0f}/s, fault after {FAULT_AT:.0%};"
          f" whole run {time.monotonic() - began:.0f} s\n")  # fmt: skip
    print_table(rows, brokers)


if __name__ == "__main__":
    main()
