"""The JSON API of SPEC §5: devices, alerts, events, and the health-check command."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from shared import store
from shared.topics import Topics, is_valid_device_id
from vesper_web.db import get_db

bp = Blueprint("api", __name__, url_prefix="/api")

HEALTH_CHECK = json.dumps({"v": 2, "cmd": "system.health"})
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INTEGER = re.compile(r"[0-9]{1,18}")  # fits SQLite's 64-bit integers


def valid_device_id(device_id: str) -> str:
    """The id itself, or a 400 before anything (a topic, a query) is built from it."""
    if not is_valid_device_id(device_id):
        abort(400, "invalid device id: 1-64 characters of A-Z a-z 0-9 _ . : -")
    return device_id


def int_arg(name: str, default: int, minimum: int = 0) -> int:
    """A non-negative integer query argument, or a 400 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw) or int(raw) < minimum:
        abort(400, f"{name} must be an integer of at least {minimum}")
    return int(raw)


def _known_device(device_id: str) -> dict[str, Any]:
    device = store.device(get_db(), valid_device_id(device_id))
    if device is None:
        abort(404, f"device {device_id} was never seen")
    return device


@bp.get("/devices")
def devices() -> ResponseReturnValue:
    """Every known device with its health."""
    return jsonify(store.devices(get_db()))


@bp.get("/devices/<device_id>")
def device(device_id: str) -> ResponseReturnValue:
    """One device with its active alerts, read in one snapshot."""
    with store.read(get_db()):
        found = _known_device(device_id)
        found["alerts"] = store.alerts(get_db(), device_id)
    return jsonify(found)


@bp.get("/devices/<device_id>/alerts")
def alerts(device_id: str) -> ResponseReturnValue:
    """The active alert set, most severe first; [] for a healthy device."""
    with store.read(get_db()):
        _known_device(device_id)
        return jsonify(store.alerts(get_db(), device_id))


@bp.get("/events")
def events() -> ResponseReturnValue:
    """Recent events oldest first; with ?after=ID the ones after it (for paging and scripts)."""
    limit = min(int_arg("limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    device_id = request.args.get("device")
    if device_id is not None:
        valid_device_id(device_id)
    if "after" in request.args:
        found = store.events_after(get_db(), int_arg("after", 0), limit=limit, device=device_id)
    else:
        found = store.recent_events(get_db(), limit=limit, device=device_id)
    return jsonify({"events": found})


@bp.post("/devices/<device_id>/health-check")
def health_check(device_id: str) -> ResponseReturnValue:
    """Ask the device to run its health check now; it answers on its alerts topic."""
    _known_device(device_id)
    topic = Topics(current_app.config["VESPER"].mqtt.topic_prefix).control(device_id)
    bridge = current_app.extensions.get("vesper_bridge")
    if bridge is None or not bridge.publish(topic, HEALTH_CHECK):
        abort(503, "the MQTT broker is unreachable; try again")
    return jsonify({"status": "sent"}), 202
