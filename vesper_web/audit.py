"""The audit log for admins (§14, docs/audit.md): GET /api/audit (JSON paged by Link, or CSV) and the Audit page.

The entries are written by audit_trail.record, which this blueprint installs after every request of the app.
`from` and `to` take what history's reports take (history_query.instant); without them the whole log is read,
newest first. The CSV holds every entry the filters match (or `limit` of them), read a page at a time off the
worker's loop and streamed, each cell defused for a spreadsheet.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, jsonify, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from shared.store import audit as audit_store
from vesper_web import audit_trail, device_query, history_query
from vesper_web.db import get_db
from vesper_web.history import zone_name
from vesper_web.offload import off_the_loop
from vesper_web.registry_csv import escape
from vesper_web.registry_rules import CONTROL

bp = Blueprint("audit", __name__, template_folder="templates")
bp.after_app_request(audit_trail.record)

CSV_COLUMNS = ("id", *audit_store.COLUMNS)
DEFAULT_LIMIT = 100
CSV_PAGE = 1000  # entries read per step of a CSV
MAX_NAME = 64  # of an actor or action asked for (the columns' caps)
BAD_CURSOR = "cursor: not one this list gave; start again without it"


def _name(args: history_query.Args, name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not 0 < len(value) <= MAX_NAME or CONTROL.search(value):
        abort(400, f"{name}: 1 to {MAX_NAME} characters, without control characters")
    return value


def filters(args: history_query.Args) -> dict[str, Any]:
    """The query's filters as audit_store.entries' keywords (start, end, actor, action); a 400 names the parameter."""
    zone = ZoneInfo(zone_name())
    times = {key: history_query.instant(name, args[name], zone) if name in args else None
             for key, name in (("start", "from"), ("end", "to"))}  # fmt: skip
    return {**times, "actor": _name(args, "actor"), "action": _name(args, "action")}


def _page(work: functools.partial[Any]) -> tuple[list[dict[str, Any]], str | None]:
    try:
        return work()  # type: ignore[no-any-return]
    except ValueError:  # the store's word for a cursor it did not give
        abort(400, BAD_CURSOR)


@bp.get("/api/audit")
def audit() -> ResponseReturnValue:
    """The audit log: state-changing requests and sign-ins, newest first; filters, a page (Link) or CSV.
    ---
    get:
      parameters: [audit_from, audit_to, audit_actor, audit_action, audit_limit, audit_cursor, audit_format]
      responses: {200: AuditEntries, 400: BadRequest}
    """
    found = filters(request.args)
    form = history_query.form(request.args)
    size = device_query.limit(request.args, None if form == "csv" else DEFAULT_LIMIT)
    cursor = request.args.get("cursor")  # given empty: not one the list gave (a 400)
    if form == "csv":
        return _csv(found, size, cursor)
    rows, following = _page(functools.partial(audit_store.entries, get_db(), **found, limit=size, cursor=cursor))
    response = jsonify(rows)
    link = history_query.next_link(following)
    if link is not None:
        response.headers["Link"] = link
    return response


def csv_text(rows: list[dict[str, Any]], header: bool = False) -> str:
    """Entries as CSV lines (CSV_COLUMNS), each cell defused for a spreadsheet (registry_csv.escape)."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([escape("" if row[c] is None else str(row[c])) for c in CSV_COLUMNS])
    return out.getvalue()


def _csv(found: dict[str, Any], total: int | None, cursor: str | None) -> Response:
    """Every entry the filters match from the cursor on (at most `total`), streamed a page at a time."""
    conn = get_db()

    def step(after: str | None, left: int | None) -> tuple[list[dict[str, Any]], str | None]:
        size = CSV_PAGE if left is None else min(CSV_PAGE, left)
        return off_the_loop(functools.partial(audit_store.entries, conn, **found, limit=size, cursor=after))

    rows, following = _page(functools.partial(step, cursor, total))  # a bad cursor is a 400, not a cut CSV

    def lines() -> Iterator[str]:
        page, after, left = rows, following, total
        yield csv_text(page, header=True)
        while after is not None and (left is None or left > len(page)):
            left = None if left is None else left - len(page)
            page, after = step(after, left)
            yield csv_text(page)

    headers = {"Content-Disposition": 'attachment; filename="vesper-audit.csv"'}
    return Response(stream_with_context(lines()), mimetype="text/csv", headers=headers)


@bp.get("/audit")
def page() -> str:
    """The Audit page: the log with its filters in the URL, older pages, a CSV of what it shows."""
    return render_template("audit.html", page="audit")
