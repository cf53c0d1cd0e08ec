"""History's API (§13, docs/history.md#api): a device's history, incidents, availability and problem reports.

Each route reads through shared/store/history.py with the window parsed once (history_query.py),
`now` read once, and the day boundaries of history.timezone. A fleet's report (and its CSV) is computed off the
worker's loop: the worker keeps serving meanwhile. A token limited to sites (§14) reads its sites' devices only:
another site's device history is a 404 as for an unknown device; the lists and reports hold nothing of another site.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from shared.store import history as history_store
from vesper_web import auth, device_query, history_query
from vesper_web.api import valid_device_id
from vesper_web.db import get_db
from vesper_web.offload import off_the_loop
from vesper_web.registry_csv import escape

bp = Blueprint("history", __name__, url_prefix="/api")
CSV_COLUMNS = ("group", "name", "site", "devices", "availability", "under_99", "outages", "down_s", "mtta_s", "mttr_s")


def zone_name() -> str:
    """history.timezone (checked at start-up: a known IANA name)."""
    return str(current_app.config["VESPER"].history.timezone)


def _window(now: float) -> history_query.Window:
    return history_query.window(request.args, now, ZoneInfo(zone_name()))


@bp.get("/devices/<device_id>/history")
def device_history(device_id: str) -> ResponseReturnValue:
    """A device's availability over the window and for 24 h, 7 d, 30 d, 90 d, and its episodes, newest first.
    ---
    get:
      parameters: [history_from, history_to]
      responses: {200: DeviceHistory, 400: BadRequest, 404: NotFound}
    """
    valid_device_id(device_id)
    now = time.time()
    span = _window(now)
    found = history_store.device_history(get_db(), device_id, span.start, span.end, now, sites=auth.sites())
    if found is None:  # another site's device (§14) answers as one that does not exist
        abort(404, f"device {device_id} was never seen")
    return jsonify(found)


@bp.get("/incidents")
def incidents() -> ResponseReturnValue:
    """Episodes (outages and incidents, or kind=blind: the monitor's) overlapping the window, newest first, paged.
    ---
    get:
      parameters: [history_from, history_to, history_device, history_site, history_tag, history_subsystem,
                   history_state, history_open, history_kind, history_limit, history_cursor]
      responses: {200: Incidents, 400: BadRequest}
    """
    now = time.time()
    span = _window(now)
    filters = history_query.incident_filters(request.args)
    size = device_query.limit(request.args, history_query.INCIDENTS_LIMIT)
    cursor = request.args.get("cursor") or None
    try:
        rows, following = history_store.incidents(
            get_db(), span.start, span.end, now, **filters, limit=size, cursor=cursor, sites=auth.sites()
        )
    except ValueError:  # the store's word for a cursor it did not give
        abort(400, "cursor: not one this list gave; start again without it")
    response = jsonify(rows)
    link = history_query.next_link(following)
    if link is not None:
        response.headers["Link"] = link
    return response


@bp.get("/reports/availability")
def availability() -> ResponseReturnValue:
    """Availability, devices under 99 %, outages, time down, MTTA and MTTR per device, site, tag or day; or CSV.
    ---
    get:
      parameters: [history_from, history_to, group_by, history_format]
      responses: {200: AvailabilityReport, 400: BadRequest}
    """
    now = time.time()
    span = _window(now)
    group = history_query.group_by(request.args, span)
    form = history_query.form(request.args)
    report = off_the_loop(  # a fleet's figures: the worker keeps serving meanwhile
        history_store.availability_report, get_db(), span.start, span.end, now, group, zone_name(), auth.sites()
    )
    if form == "csv":
        body = off_the_loop(report_csv, report)
        name = f"vesper-availability-{group}.csv"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return current_app.response_class(body, mimetype="text/csv", headers=headers)
    return jsonify(report)


def report_csv(report: dict[str, Any]) -> str:
    """A report's rows as CSV (CSV_COLUMNS), each cell defused for a spreadsheet (registry_csv.escape)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        cells = [row.get(column) for column in CSV_COLUMNS]
        writer.writerow([escape("" if cell is None else str(cell)) for cell in cells])
    return out.getvalue()


@bp.get("/reports/problems")
def problems() -> ResponseReturnValue:
    """The subsystems and devices with the most incidents (then the most time in a problem state) in the window.
    ---
    get:
      parameters: [history_from, history_to, problems_limit]
      responses: {200: Problems, 400: BadRequest}
    """
    now = time.time()
    span = _window(now)
    size = device_query.limit(request.args, history_query.PROBLEMS_LIMIT, history_query.MAX_PROBLEMS)
    return jsonify(off_the_loop(history_store.problems, get_db(), span.start, span.end, now, size, auth.sites()))
