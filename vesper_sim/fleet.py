"""A simulated Vesper fleet: pure scheduling of what each device publishes and when."""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field

from shared.topics import Topics

HEARTBEAT_S = 30.0
ALERT_MEAN_S = 120.0
PLAYBACK_MEAN_S = 120.0
SILENCE_MEAN_S = 600.0
SILENCE_LENGTH_S = 180.0
SUBSYSTEMS = ("FileManager", "TimeKeeper", "Audio", "Network", "Motor")
MESSAGES = {
    "FileManager": ("SD mount failed", "ConfigManager health check failed"),
    "TimeKeeper": ("NTP sync failed", "RTC drift above 2 s"),
    "Audio": ("Amplifier over temperature", "Speaker impedance out of range"),
    "Network": ("Wi-Fi RSSI low", "Broker round trip above 2 s"),
    "Motor": ("Clapper stalled", "Motor current high"),
}


@dataclass(frozen=True)
class Out:
    """One message a device publishes."""

    topic: str
    payload: bytes
    qos: int
    retain: bool = False


@dataclass
class Device:
    """One simulated controller's state."""

    id: str
    alerts: dict[str, str] = field(default_factory=dict)
    playing: str | None = None
    silent_until: float = 0.0


class Fleet:
    """N devices; `due(now)` returns what they publish up to `now` (seconds of simulated time)."""

    def __init__(self, n: int, speed: float = 1.0, seed: int = 1, prefix: str = "vesper", silent: bool = True) -> None:
        self.rng = random.Random(seed)
        self.topics = Topics(prefix)
        self.speed = speed
        self.silent = silent
        self.devices = [Device(f"bell-{i:04d}") for i in range(n)]
        self.by_id = {d.id: d for d in self.devices}
        self._queue: list[tuple[float, int, str]] = []
        for i in range(n):
            self._push(self.rng.uniform(0, HEARTBEAT_S), i, "heartbeat")
            self._push(self.rng.expovariate(1 / ALERT_MEAN_S), i, "alert")
            self._push(self.rng.expovariate(1 / PLAYBACK_MEAN_S), i, "playback")
            if silent:
                self._push(self.rng.expovariate(1 / SILENCE_MEAN_S), i, "silence")

    def _push(self, after_s: float, index: int, action: str, base: float = 0.0) -> None:
        heapq.heappush(self._queue, (base + after_s / self.speed, index, action))

    def next_due(self) -> float:
        """When the next message is due."""
        return self._queue[0][0] if self._queue else float("inf")

    def due(self, now: float) -> list[Out]:
        """Every message due up to `now`, rescheduling each device's next one."""
        out: list[Out] = []
        while self._queue and self._queue[0][0] <= now:
            at, index, action = heapq.heappop(self._queue)
            device = self.devices[index]
            if action == "heartbeat":
                self._push(HEARTBEAT_S, index, action, at)
                if at >= device.silent_until:
                    out.append(self._heartbeat(device, at))
            elif action == "alert":
                self._push(self.rng.expovariate(1 / ALERT_MEAN_S), index, action, at)
                transition = self._transition(device) if at >= device.silent_until else None
                if transition is not None:
                    out.append(transition)
            elif action == "playback":
                self._push(self.rng.expovariate(1 / PLAYBACK_MEAN_S), index, action, at)
                if at >= device.silent_until:
                    out.append(self._playback(device))
            elif action == "silence":
                device.silent_until = at + SILENCE_LENGTH_S / self.speed
                self._push(self.rng.expovariate(1 / SILENCE_MEAN_S) + SILENCE_LENGTH_S, index, action, at)
        return out

    def _heartbeat(self, device: Device, at: float) -> Out:
        body = {"uptime_s": int(at * self.speed), "fw": "v155", "rssi": self.rng.randint(-80, -40)}
        return Out(self.topics.status(device.id, "heartbeat"), json.dumps(body).encode(), 1, retain=True)

    def _alert(self, device: Device, subsystem: str, state: str) -> Out:
        body: dict[str, str] = {"subsystem": subsystem, "state": state}
        if state == "CLEARED":
            device.alerts.pop(subsystem, None)
        else:
            device.alerts[subsystem] = state
            body["msg"] = self.rng.choice(MESSAGES[subsystem])
        return Out(self.topics.status(device.id, "alerts"), json.dumps(body).encode(), 1)

    def _transition(self, device: Device) -> Out | None:
        """Mostly recoveries when something is wrong, and healthy devices mostly stay so."""
        if device.alerts and self.rng.random() < 0.8:
            return self._alert(device, self.rng.choice(sorted(device.alerts)), "CLEARED")
        if not device.alerts and self.rng.random() < 0.75:
            return None
        subsystem = self.rng.choice(SUBSYSTEMS)
        return self._alert(device, subsystem, self.rng.choices(("WARNING", "CRITICAL", "FAILED"), (7, 2, 1))[0])

    def _playback(self, device: Device) -> Out:
        if device.playing:
            device.playing = None
            body: dict[str, object] = {"type": "playback_stopped"}
        else:
            device.playing = f"MEL{self.rng.randint(100, 999)}"
            body = {"type": "playback_started", "payload": {"melody_uid": device.playing}}
        return Out(self.topics.status(device.id, "info"), json.dumps(body).encode(), 0)

    def health_check(self, device_id: str) -> list[Out]:
        """A `system.health` command: the device re-checks and reports what changed."""
        device = self.by_id.get(device_id)
        if device is None:
            return []
        out = [self._alert(device, s, "CLEARED") for s in list(device.alerts) if self.rng.random() < 0.5]
        healthy = [s for s in SUBSYSTEMS if s not in device.alerts]
        if healthy and self.rng.random() < 0.3:
            out.append(self._alert(device, self.rng.choice(healthy), "WARNING"))
        return out
