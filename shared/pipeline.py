"""Whether the pipeline (broker -> ingest -> database -> web) can see, as plain sentences (SPEC §11). Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.events import iso

STATE_KEY = "ingest_state"  # the meta row the leading ingest writes each sweep (vesper_ingest/selfreport.py)


@dataclass(frozen=True)
class Bridge:
    """This web worker's broker connection: whether it is up, and since when (epoch seconds; None: never)."""

    connected: bool
    since: float | None


def parse_state(raw: str | None) -> dict[str, Any] | None:
    """The ingest's recorded state (meta `ingest_state`), or None when it never reported or the text is not ours."""
    try:
        state = json.loads(raw) if raw else None
    except ValueError:
        return None
    ok = isinstance(state, dict) and isinstance(state.get("last_sweep_at"), int | float)
    return state if ok else None


def clock_time(ts: float) -> str:
    """A time of day as operators read it in a sentence: 20:14:03 UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def duration(seconds: float) -> str:
    """47 s, 3 min, 2 h 5 min: how long, for a sentence."""
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _ingest_problems(state: dict[str, Any] | None, now: float, stale_after_s: float) -> tuple[list[str], float | None]:
    """The ingest's problems, and since when device data is not current (None: it is)."""
    if state is None:
        return ["The ingest has never reported: is vesper_ingest running?"], None
    problems: list[str] = []
    blind: float | None = None
    last = float(state["last_sweep_at"])
    if now - last > stale_after_s:
        problems.append(f"The ingest has not reported for {duration(now - last)} (last at {clock_time(last)}).")
        blind = last
    lost = state.get("disconnected_since")
    if not state.get("broker_connected") and isinstance(lost, int | float):
        reason = str(state.get("reason") or "lost the broker")
        problems.append(f"The ingest is not connected to the broker since {clock_time(lost)}: {reason}.")
        blind = lost if blind is None else min(blind, lost)
    return problems, blind


def assess(state: dict[str, Any] | None, bridge: Bridge | None, now: float, stale_after_s: float) -> dict[str, Any]:
    """GET /api/status's answer: ok, the problems, the ingest and this worker's bridge, and data_as_of."""
    problems, blind = _ingest_problems(state, now, stale_after_s)
    if bridge is not None and not bridge.connected and now - (bridge.since or 0.0) > stale_after_s:
        since = f" since {clock_time(bridge.since)}" if bridge.since else ""
        problems.append(f"This web server is not connected to the broker{since}: live updates are paused.")
    ingest = None
    if state is not None:
        connected = bool(state.get("broker_connected"))
        key = "connected_since" if connected else "disconnected_since"
        ingest = {
            "last_sweep_at": iso(state["last_sweep_at"]),
            "broker_connected": connected,
            key: iso(state.get(key)),
            "name": state.get("name"),
            "version": state.get("version"),
        }
    return {
        "ok": not problems,
        "problems": problems,
        "ingest": ingest,
        "bridge": None if bridge is None else {"connected": bridge.connected, "since": iso(bridge.since)},
        "data_as_of": iso(now if blind is None and state is not None else blind),
        "liveness_as_of": iso(blind),  # null while the ingest sees: device objects carry it
    }


def unreadable(reason: object, bridge: Bridge | None, now: float, stale_after_s: float) -> dict[str, Any]:
    """GET /api/status's answer while the database does not answer (no primary, a failover): not ok, and why."""
    found = assess(None, bridge, now, stale_after_s)
    said = " ".join(str(reason).split())[:200]
    found["problems"] = [f"The database does not answer ({said}): nothing newer can be shown.", *found["problems"][1:]]
    return found
