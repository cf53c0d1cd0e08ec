"""The JSON API (docs/architecture.md#web-process): devices, alerts, events, and the health-check command."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from shared import store
from shared.topics import Topics, is_valid_device_id
from vesper_web import auth, device_query, event_query, registry_csv, scope, status
from vesper_web.db import get_db
from vesper_web.offload import off_the_loop
from vesper_web.ratelimit import Interval

bp = Blueprint("api", __name__, url_prefix="/api")

HEALTH_CHECK = json.dumps({"v": 2, "cmd": "system.health"})
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INTEGER = re.compile(r"[0-9]{1,18}")  # fits SQLite's 64-bit integers


@bp.record_once
def _command_limit(state: BlueprintSetupState) -> None:
    """One health check per device per interval, in this worker."""
    state.app.extensions["vesper_command_limit"] = Interval(state.app.config["VESPER"].web.health_check_interval_s)


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
    device = store.device(get_db(), valid_device_id(device_id), time.time())
    if device is None or not scope.mine(device["site"]):  # another site's device is as unknown as none (§14)
        abort(404, f"device {device_id} was never seen")
    return device


def _reported(device_id: str) -> None:
    """A 404 unless the device has reported (a registered device that never did has no alert set yet)."""
    if not store.is_known(get_db(), valid_device_id(device_id)) or not scope.visible(device_id):
        abort(404, f"device {device_id} was never seen")


@bp.get("/devices")
def devices() -> ResponseReturnValue:
    """The devices matching the query (device_query.py), in its order: a page with limit, else all; ?format=csv.
    ---
    get:
      parameters: [q, health, tag, site, firmware, sort, limit, cursor, format]
      responses: {200: DeviceList, 400: BadRequest}
    """
    form = request.args.get("format", "json")
    if form not in ("json", "csv"):
        abort(400, "format: json or csv")
    query = device_query.parse()
    rows, total = store.list_devices(get_db(), query)
    headers = store.count_headers(query, total)
    link = device_query.next_link(query, rows)
    if link is not None:
        headers["Link"] = link
    page = rows[: query.limit]
    if form == "csv":
        headers["Content-Disposition"] = 'attachment; filename="vesper-devices.csv"'
        body = off_the_loop(_csv, page)  # a whole fleet's CSV: the worker keeps serving meanwhile
        return current_app.response_class(body, mimetype="text/csv", headers=headers)
    body = store.rows_json(page, status.liveness_as_of(), store.page_markers(get_db(), page, time.time()))
    return current_app.response_class(body, mimetype="application/json", headers=headers)


def _csv(rows: list[tuple[Any, ...]]) -> str:
    return registry_csv.export([store.device_dict(row) for row in rows])


@bp.get("/summary")
def summary() -> ResponseReturnValue:
    """The fleet's counts by health, and of the largest tags, sites and firmware versions with how many there are
    (a token limited to sites: its devices' counts).
    ---
    get:
      responses: {200: Summary}
    """
    return jsonify(store.summary(get_db(), auth.sites()))


@bp.get("/devices/<device_id>")
def device(device_id: str) -> ResponseReturnValue:
    """One device with its active alerts, read in one snapshot.
    ---
    get:
      responses: {200: DeviceDetail, 400: BadRequest, 404: NotFound}
    """
    with store.read(get_db()):
        found = _known_device(device_id)
        found["liveness_as_of"] = status.liveness_as_of()
        found["alerts"] = store.alert_objects(get_db(), found, time.time())
    return jsonify(found)


@bp.get("/devices/<device_id>/alerts")
def alerts(device_id: str) -> ResponseReturnValue:
    """The active alert set, most severe first; [] for a healthy device, 404 until it has reported.
    ---
    get:
      responses: {200: Alerts, 400: BadRequest, 404: NotFound}
    """
    with store.read(get_db()):
        _reported(device_id)
        return jsonify(store.alerts(get_db(), device_id))


@bp.get("/events")
def events() -> ResponseReturnValue:
    """Stored events, oldest first: the newest (before=ID: older than ID), or with after=ID the next ones, filtered.
    ---
    get:
      parameters: [after, before, event_type, not_type, event_severity, device, event_site, event_tag, events_limit]
      responses: {200: Events, 400: BadRequest}
    """
    limit = min(int_arg("limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    after = int_arg("after", 0) if "after" in request.args else None
    before = int_arg("before", 0, minimum=1) if "before" in request.args else None
    page = store.Timeline(limit, after, before, **event_query.filters(request.args), sites=auth.sites())
    return jsonify({"events": store.timeline(get_db(), page)})


@bp.get("/me")
def me() -> ResponseReturnValue:
    """Who the console thinks is asking, with its role and sites (null: every site); pages notice an expired sign-in.
    ---
    get:
      responses: {200: Me}
    """
    who = auth.principal() or auth.LOCAL
    sites = None if who.sites is None else list(who.sites)
    enabled = current_app.config["VESPER"].auth.enabled
    return jsonify({"kind": who.kind, "name": who.name, "auth": enabled, "role": who.role, "sites": sites})


# An id holding "/" (%2F) or nothing at all still reaches this view, to be refused as an id with 400.
@bp.post("/devices/<path:device_id>/health-check")
@bp.post("/devices//health-check", defaults={"device_id": ""}, merge_slashes=False)
def health_check(device_id: str) -> ResponseReturnValue:
    """Ask the device to run its health check now; it answers on its alerts topic. Every command is audited.
    ---
    post:
      responses: {202: Sent, 400: BadRequest, 404: NotFound, 429: TooManyRequests, 503: Unavailable}
    """
    _reported(device_id)
    limit: Interval = current_app.extensions["vesper_command_limit"]
    who, client = auth.principal() or auth.LOCAL, request.remote_addr
    wait = limit.take(device_id, time.monotonic())
    if wait > 0:
        retry = max(1, math.ceil(wait))
        if limit.first_refusal(device_id):
            auth.audit.info("command system.health to %s by %s from %s: refused, sent < %g s ago",
                            device_id, who, client, limit.interval_s)  # fmt: skip
        response = jsonify({"error": f"a health check was sent to {device_id} moments ago; retry in {retry} s"})
        return response, 429, {"Retry-After": str(retry)}
    topic = Topics(current_app.config["VESPER"].mqtt.topic_prefix).control(device_id)
    bridge = current_app.extensions.get("vesper_bridge")
    if bridge is None or not bridge.publish(topic, HEALTH_CHECK):
        limit.release(device_id)
        auth.audit.warning("command system.health to %s by %s from %s: not sent, broker unreachable",
                           device_id, who, client)  # fmt: skip
        abort(503, "the MQTT broker is unreachable; try again")
    auth.audit.info("command system.health to %s by %s from %s: sent", device_id, who, client)
    return jsonify({"status": "sent"}), 202
