"""Every MQTT topic string Vesper uses, and the device-id rule (docs/events.md#inputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.vocabulary import TOPIC_KINDS

DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def is_valid_device_id(device_id: str) -> bool:
    """True for 1-64 characters of A-Z a-z 0-9 _ . : - and nothing else."""
    return DEVICE_ID_RE.fullmatch(device_id) is not None


@dataclass(frozen=True)
class Topics:
    """Topic builder and parser for one prefix."""

    prefix: str = "vesper"

    def subscriptions(self) -> list[tuple[str, int]]:
        """The ingest's subscriptions, at QoS 1 (shared/vocabulary.py says why)."""
        return [(f"{self.prefix}/+/status/{kind}", 1) for kind in TOPIC_KINDS]

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
        if len(parts) != 4 or parts[0] != self.prefix or parts[2] != "status" or parts[3] not in TOPIC_KINDS:
            return None
        return parts[1], parts[3]
