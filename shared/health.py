"""A device's health colour from its liveness and worst active alert."""

from __future__ import annotations

RANK_HEALTH = {0: "critical", 1: "critical", 2: "warning"}


def health(liveness: str, worst_rank: int | None) -> str:
    """offline beats alerts; alerts beat unknown; otherwise ok (SPEC §5)."""
    if liveness == "offline":
        return "offline"
    if worst_rank is not None:
        return RANK_HEALTH[worst_rank]
    if liveness == "unknown":
        return "unknown"
    return "ok"
