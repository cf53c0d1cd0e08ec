"""Every MQTT topic string Vesper uses, and the device-id rule (docs/events.md#inputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
KINDS = ("heartbeat", "alerts", "info")
# The broker delivers at the lower of subscription and publish QoS: QoS 0 publishers are unchanged, and a
# QoS 1 message (info too: playback) waits in the ingest's persistent session while it restarts (§16).
SUBSCRIPTIONS_QOS = {"heartbeat": 1, "alerts": 1, "info": 1}


def is_valid_device_id(device_id: str) -> bool:
    """True for 1-64 characters of A-Z a-z 0-9 _ . : - and nothing else."""
    return DEVICE_ID_RE.fullmatch(device_id) is not None


@dataclass(frozen=True)
class Topics:
    """Topic builder and parser for one prefix."""

    prefix: str = "vesper"

    def subscriptions(self) -> list[tuple[str, int]]:
        """The ingest's subscriptions with their QoS."""
        return [(f"{self.prefix}/+/status/{kind}", qos) for kind, qos in SUBSCRIPTIONS_QOS.items()]

    def status(self, device_id: str, kind: str) -> str:
        """A device's status topic (used by the simulator and tests)."""
        return f"{self.prefix}/{device_id}/status/{kind}"

    def control(self, device_id: str) -> str:
        """A device's command topic; the id must already be validated."""
        if not is_valid_device_id(device_id):
            raise ValueError("invalid device id")
        return f"{self.prefix}/{device_id}/control"

    @property
    def published(self) -> str:
        """Where the ingest republishes classified events."""
        return f"{self.prefix}/console/published"

    def parse_status(self, topic: str) -> tuple[str, str] | None:
        """Split `prefix/{id}/status/{kind}` into (id, kind); None if it is not one."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != self.prefix or parts[2] != "status" or parts[3] not in KINDS:
            return None
        return parts[1], parts[3]
