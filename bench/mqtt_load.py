"""A device fleet's heartbeats from one raw MQTT 3.1.1 connection: cheap enough not to be the bottleneck.

paho spends ~80 us of Python per QoS 1 publish: a 13,000 msg/s fleet would need a core of its own
on a machine where the broker and the ingest need theirs. This writes the PUBLISH packets itself
(QoS 1, retained, as devices do), several per send, and counts PUBACKs by their 4 bytes; about
3 us per message.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

TICK_S = 0.005
WINDOW = 2000  # unacknowledged publishes before the sender waits for the broker


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


class RawPublisher:
    """One clean-session MQTT connection that publishes QoS 1 messages and counts the acknowledgements."""

    def __init__(self, port: int, client_id: str, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id.encode())
        self.sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        connack = self.sock.recv(4)
        if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"broker refused the connection: {connack!r}")
        self.sock.setblocking(False)
        self.sent = 0
        self.acked = 0
        self._ack_bytes = 0
        self._mid = 0

    def packet(self, topic: bytes, payload: bytes, retain: bool = False) -> bytes:
        """A QoS 1 PUBLISH with the next packet id."""
        self._mid = self._mid % 65535 + 1
        body = _string(topic) + struct.pack("!H", self._mid) + payload
        return bytes([0x32 | retain]) + _remaining_length(len(body)) + body

    def send(self, packets: list[bytes]) -> None:
        """Write the packets (blocking until the kernel took them all)."""
        self.sock.setblocking(True)
        self.sock.sendall(b"".join(packets))
        self.sock.setblocking(False)
        self.sent += len(packets)

    def read_acks(self) -> None:
        """Count the PUBACKs that arrived (every packet the broker sends us is a 4-byte PUBACK)."""
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise RuntimeError("the broker closed the connection")
                self._ack_bytes += len(data)
        except BlockingIOError:
            pass
        self.acked = self._ack_bytes // 4

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every publish is acknowledged."""
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            time.sleep(0.005)
            self.read_acks()

    def close(self) -> None:
        """DISCONNECT and close."""
        self.sock.setblocking(True)
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()


class HeartbeatFleet:
    """Each device's retained QoS 1 heartbeat once per period, spread evenly, its send time as "t" (a thread)."""

    def __init__(self, port: int, devices: int, period_s: float, prefix: str = "hb") -> None:
        self.port, self.devices, self.rate, self.prefix = port, devices, devices / period_s, prefix
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)

    def start(self) -> HeartbeatFleet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def device_id(self, n: int) -> str:
        return f"{self.prefix}-{n:07d}"

    def _run(self) -> None:
        pub = RawPublisher(self.port, f"bench-{self.prefix}-{self.devices}")
        t0 = time.monotonic()
        n = 0
        while not self._stop.is_set():
            pub.read_acks()
            due = int((time.monotonic() - t0) * self.rate)
            payload = b'{"t":%.6f,"fw":"v155"}' % time.time()
            packets = []
            while n < due and pub.sent + len(packets) - pub.acked < WINDOW:
                topic = f"vesper/{self.device_id(n % self.devices)}/status/heartbeat".encode()
                packets.append(pub.packet(topic, payload, retain=True))
                n += 1
            if packets:
                pub.send(packets)
            self.sent = n
            time.sleep(TICK_S)
        pub.drain()
        pub.close()
