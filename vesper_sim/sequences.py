"""Known sequences of alert transitions and the state they imply (for loss checks)."""

from __future__ import annotations

import random

SUBSYSTEMS = ("FileManager", "TimeKeeper", "Audio")

Transition = tuple[str, dict[str, str]]


def transitions(n: int, devices: int, seed: int, start: int = 0) -> list[Transition]:
    """n random alert transitions over `devices` devices; every non-CLEARED message is unique."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        device = f"dev-{rng.randrange(devices):04d}"
        state = rng.choice(("WARNING", "CRITICAL", "FAILED", "CLEARED", "CLEARED"))
        body = {"subsystem": rng.choice(SUBSYSTEMS), "state": state}
        if state != "CLEARED":
            body["msg"] = f"t{i}"
        out.append((device, body))
    return out


def implied_state(seq: list[Transition]) -> list[tuple[str, str, str, str]]:
    """The active-alert table (device, subsystem, state, message) the sequence implies."""
    state: dict[tuple[str, str], tuple[str, str]] = {}
    for device, body in seq:
        key = (device, body["subsystem"])
        if body["state"] == "CLEARED":
            state.pop(key, None)
        else:
            state[key] = (body["state"], body["msg"])
    return sorted((d, s, st, m) for (d, s), (st, m) in state.items())


def implied_events(seq: list[Transition]) -> list[tuple[str, str, str, str | None]]:
    """The (type, device, subsystem, message) alert events the sequence implies, once each, in order."""
    state: dict[tuple[str, str], tuple[str, str | None]] = {}
    out: list[tuple[str, str, str, str | None]] = []
    for device, body in seq:
        key = (device, body["subsystem"])
        if body["state"] == "CLEARED":
            if state.pop(key, None) is not None:
                out.append(("alert_cleared", device, body["subsystem"], None))
        elif state.get(key) != (body["state"], body.get("msg")):
            state[key] = (body["state"], body.get("msg"))
            out.append(("alert", device, body["subsystem"], body.get("msg")))
    return out
