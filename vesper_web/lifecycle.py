"""The alert lifecycle in the API (§9): acknowledge an alert, silence devices for maintenance; every write audited.

An acknowledgement reaches the events table through the ingest, the one writer of events: the web
queues an `ack` command, which the ingest carries out in its next sweep (<= liveness.sweep_interval_s)
with its `alert_acknowledged` event, and the web waits for that (web.command_wait_s) before answering.
Silences are the web's own table; the ingest's notifier reads them (shared/silences.py decides).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue

from shared import store
from shared.silences import Silence
from vesper_web import api, auth, lifecycle_rules, scope
from vesper_web.db import get_db
from vesper_web.registry import carried_out, writing

bp = Blueprint("lifecycle", __name__, url_prefix="/api")


def _who() -> str:
    """Who acts, as the acknowledgement records it: "user alice", "token ci" or "local"."""
    who = auth.principal() or auth.LOCAL
    return "local" if who.kind == "local" else f"{who.kind} {who.name}"


def _alert(device_id: str, subsystem: str) -> dict[str, Any] | None:
    device = store.device(get_db(), device_id)
    if device is None or not scope.mine(device["site"]):  # another site's: as if it had no alert (§14)
        return None
    return next((a for a in store.alert_objects(get_db(), device, time.time()) if a["subsystem"] == subsystem), None)


@bp.post("/devices/<device_id>/alerts/<path:subsystem>/ack")  # a subsystem may hold "/"
def acknowledge(device_id: str, subsystem: str) -> ResponseReturnValue:
    """Acknowledge an active alert, with an optional note: reminders stop until its state changes.
    ---
    post:
      requestBody:
        content: {application/json: {schema: AckRequest}}
      responses: {200: Acknowledged, 202: AckQueued, 400: BadRequest, 404: NotFound, 503: Unavailable}
    """
    api.valid_device_id(device_id)
    note = lifecycle_rules.ack_note(request.get_data())
    if _alert(device_id, subsystem) is None:
        abort(404, f"device {device_id} has no active alert of {subsystem[:64]}")
    args = {"subsystem": subsystem, "by": _who(), "note": note}
    with writing() as conn:
        command = store.queue_command(conn, "ack", device_id, args, time.time())
    auth.audit.info("acknowledge %s %s by %s from %s", device_id, subsystem[:64], args["by"], request.remote_addr)
    if not carried_out(command):
        return jsonify({"status": "queued"}), 202
    found = _alert(device_id, subsystem)
    if found is None or found["acknowledged"] is None:
        abort(404, f"the alert of {subsystem[:64]} on {device_id} ended before it was acknowledged")
    return jsonify(found)


@bp.post("/silences")
def create_silence() -> ResponseReturnValue:
    """Silence a device, a tag, a subsystem or the whole fleet for a while: kept and shown, told to no one.
    ---
    post:
      requestBody:
        required: true
        content: {application/json: {schema: SilenceRequest}}
      responses: {201: SilenceCreated, 400: BadRequest, 404: NotFound, 503: Unavailable}
    """
    now = time.time()
    fields = lifecycle_rules.silence(request.get_data(), now)
    if auth.sites() is not None:  # a token limited to sites: one of its devices only (§14)
        if fields["device_id"] is None:
            abort(403, scope.SILENCE_REFUSED)
        scope.require(fields["device_id"])
    with writing() as conn:
        silence_id = store.add_silence(conn, Silence(0, created_by=_who(), created_at=now, **fields))
        created = next(s for s in store.silences(conn, now) if s.id == silence_id)
    auth.audit.info("silence %d created by %s from %s", silence_id, created.created_by, request.remote_addr)
    return jsonify(store.silence_dict(created)), 201


@bp.get("/silences")
def list_silences() -> ResponseReturnValue:
    """The silences active now or still to come, soonest end first (a token limited to sites: its own, §14).
    ---
    get:
      responses: {200: Silences}
    """
    found = scope.silences(store.silences(get_db(), time.time()))
    return jsonify({"silences": [store.silence_dict(s) for s in found]})


@bp.delete("/silences/<int(max=9223372036854775807):silence_id>")
def expire_silence(silence_id: int) -> ResponseReturnValue:
    """End a silence now: what is still wrong in it is told once, as at its planned end.
    ---
    delete:
      responses: {204: {description: ended}, 404: NotFound, 503: Unavailable}
    """
    now = time.time()
    if auth.sites() is not None and not scope.silences(store.silences_by_id(get_db(), [silence_id])):
        abort(404, f"no silence {silence_id} still to end")  # another site's, a tag's or the fleet's (§14)
    with writing() as conn:
        ended = store.expire_silence(conn, silence_id, now, _who())
    if not ended:
        abort(404, f"no silence {silence_id} still to end")
    auth.audit.info("silence %d ended by %s from %s", silence_id, _who(), request.remote_addr)
    return "", 204
