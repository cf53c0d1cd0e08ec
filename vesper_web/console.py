"""The operator console: server-rendered pages that small vanilla JS keeps live (docs/architecture.md#web-process).

The pages hold no device data of their own: each script reads the JSON API when its stream
opens (and again on every reconnect) and then follows `/events/stream`, so the API stays the
one source of truth and a page never shows state it missed while disconnected.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from shared import severity, store, vocabulary
from shared.topics import is_valid_device_id
from vesper_web import scope
from vesper_web.db import get_db

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static", static_url_path="/static")


@bp.get("/static/rules.js")
def rules() -> Response:
    """The severity order and the event types for the pages, generated from shared/severity.py and vocabulary.py."""
    response = Response(severity.js_module() + vocabulary.js_module(), mimetype="text/javascript")
    response.cache_control.max_age = 300
    return response


@bp.get("/")
def devices() -> str:
    """The fleet: one row per device with its health dot."""
    return render_template("devices.html", page="devices")


@bp.get("/devices/<device_id>")
def device(device_id: str) -> tuple[str, int] | str:
    """One device: active alerts, liveness, playback, a health-check button; a never-seen id fills in live."""
    if not is_valid_device_id(device_id) or not scope.visible(device_id):  # another site's: as unknown (§14)
        return render_template("not_found.html", page="not_found"), 404
    known = store.is_known(get_db(), device_id)
    return render_template("device.html", page="device", device_id=device_id, known=known, zone=_zone())


@bp.get("/events")
def events() -> tuple[str, int] | str:
    """The live event timeline, optionally for one device (?device=ID)."""
    device_id = request.args.get("device", "").strip()
    if device_id and not is_valid_device_id(device_id):
        return render_template("events.html", page="events", device_id="", bad_device=True), 400
    return render_template("events.html", page="events", device_id=device_id, bad_device=False)


@bp.get("/silences")
def silences() -> str:
    """Maintenance windows: the active and future silences, a form to add one, "End now" per row."""
    return render_template("silences.html", page="silences")


@bp.get("/devices/<device_id>/history")
def device_history(device_id: str) -> tuple[str, int] | str:
    """One device's episodes over a window and its availability (§13), in history.timezone."""
    if not is_valid_device_id(device_id) or not scope.visible(device_id):
        return render_template("not_found.html", page="not_found"), 404
    return render_template("history.html", page="history", device_id=device_id, zone=_zone())


@bp.get("/reports")
def reports() -> str:
    """The fleet's availability per day, by site or tag, and the top problems (§13), in history.timezone."""
    return render_template("reports.html", page="reports", zone=_zone())


def _zone() -> str:
    return str(current_app.config["VESPER"].history.timezone)
