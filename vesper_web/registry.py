"""The registry in the API (§7): PATCH and DELETE a device, the CSV import; every write audited.

The web writes only `registry` and `ingest_commands`, each request in one short BEGIN IMMEDIATE
transaction on a connection of its own (shared/store/registry.py says how this coexists with the
ingest); a forget reaches the ingest as a command it carries out in its next sweep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from shared import store
from vesper_web import api, auth, registry_csv, registry_rules, scope
from vesper_web.db import get_db
from vesper_web.offload import off_the_loop
from vesper_web.registry_rules import FieldError

bp = Blueprint("registry", __name__, url_prefix="/api")
BUSY = "the database is busy; try again"
POLL_S = 0.05


@contextmanager
def transaction(target: str) -> Iterator[store.Connection]:
    """A short-lived write connection in one BEGIN IMMEDIATE transaction; StoreUnavailable when SQLite stays busy."""
    with store.guarded():
        conn = store.connect(target)
        try:
            with store.write(conn):
                yield conn
        finally:
            conn.close()


@contextmanager
def writing() -> Iterator[store.Connection]:
    """This request's write transaction (see transaction); 503 when SQLite stays busy."""
    try:
        with transaction(current_app.config["VESPER"].database.target) as conn:
            yield conn
    except store.StoreUnavailable:
        abort(503, BUSY)


def carried_out(command_id: int) -> bool:
    """Wait (web.command_wait_s at most) for the ingest to carry a queued command out; False if it is still queued."""
    deadline = time.monotonic() + current_app.config["VESPER"].web.command_wait_s
    while store.command_pending(get_db(), command_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)  # gevent's: the worker serves others meanwhile
    return True


def _audit(action: str, detail: str) -> None:
    auth.audit.info("registry %s %s by %s from %s", action, detail, auth.principal() or auth.LOCAL, request.remote_addr)


def _merge_patch() -> dict[str, Any]:
    """The request's merge patch, checked field by field, or a 400 naming the field."""
    try:
        body = json.loads(request.get_data())
    except (ValueError, RecursionError):
        abort(400, f"body: a JSON object, a merge patch of {registry_rules.FIELD_LIST}")
    try:
        return registry_rules.patch(body)
    except FieldError as exc:
        abort(400, str(exc))


def _within_sites(device_id: str, site: str | None, new_site: str | None) -> None:
    """A token limited to sites (§14): another site's device is 404, and a PATCH keeps its device in its sites."""
    if not scope.mine(site):
        scope.hide(device_id)
    if not scope.mine(new_site):
        abort(403, scope.MOVE_REFUSED)


@bp.patch("/devices/<device_id>")
def patch_device(device_id: str) -> ResponseReturnValue:
    """Apply a JSON merge patch to the device's registry fields (registering it if need be); 200 with the device.
    ---
    patch:
      requestBody:
        required: true
        content: {application/merge-patch+json: {schema: RegistryPatch}}
      responses: {200: DeviceDetail, 400: BadRequest, 404: NotFound, 503: Unavailable}
    """
    api.valid_device_id(device_id)
    changes = _merge_patch()
    with writing() as conn:
        before = store.entry_dict(store.registry_entry(conn, device_id))
        fields = {**before, **changes}
        _within_sites(device_id, before["site"], fields["site"])
        store.put_entry(conn, device_id, fields, time.time())
    _audit("patch", f"{device_id} ({', '.join(sorted(changes)) or 'nothing'})")
    return api.device(device_id)


@bp.delete("/devices/<device_id>")
def delete_device(device_id: str) -> ResponseReturnValue:
    """Forget a device: its registry entry at once, its state and alerts by the ingest; past events stay.

    A device the ingest knows is forgotten in its next sweep, and the answer waits for that
    (web.command_wait_s), so a GET that follows a 204 says 404; a 202 says it is only queued.
    ---
    delete:
      responses: {204: {description: forgotten}, 202: AckQueued, 400: BadRequest, 404: NotFound, 503: Unavailable}
    """
    api.valid_device_id(device_id)
    scope.require(device_id)
    with writing() as conn:
        found, command = store.forget_queued(conn, device_id, time.time())
    if not found:
        abort(404, f"device {device_id} was never seen nor registered")
    _audit("delete", device_id)
    if command is not None and not carried_out(command):
        return jsonify({"status": "queued"}), 202
    return "", 204


@bp.post("/devices")
def import_devices() -> ResponseReturnValue:
    """Create or update a device per valid CSV line, all in one transaction; each refused line named (body ≤ 10 MiB).

    It was POST /api/devices/import until §12: that path is also the device "import"'s (any id of
    1-64 characters of A-Za-z0-9_.:- is a device's), so the collection's actions take no path below it.
    ---
    post:
      requestBody:
        required: true
        description: "a header line of id and any of name,site,tags,notes,heartbeat_timeout_s; tags space-separated"
        content: {text/csv: {schema: {type: string}, example: "id,name,tags\\nbell-1,North tower,north roof\\n"}}
      responses: {200: Imported, 400: BadRequest, 415: UnsupportedMediaType, 503: Unavailable}
    """
    if request.mimetype != "text/csv":
        abort(415, "send the CSV with Content-Type: text/csv")
    target = current_app.config["VESPER"].database.target
    try:
        answer, counts = off_the_loop(_import, target, request.get_data(), time.time())
    except UnicodeDecodeError:
        abort(400, "body: UTF-8 text")
    except FieldError as exc:
        abort(400, str(exc))
    except store.StoreUnavailable:
        abort(503, BUSY)
    _audit("import", counts)
    return current_app.response_class(answer, mimetype="application/json")


def _import(target: str, body: bytes, now: float) -> tuple[str, str]:
    """Decode, check and store an import in one transaction: (the JSON answer, its counts for the audit line)."""
    parsed = registry_csv.parse(body.decode("utf-8-sig"))
    with transaction(target) as conn:
        before = store.registered_ids(conn)
        store.put_entries(conn, parsed.columns, parsed.rows, now)
    created = sum(1 for row in parsed.rows if row[0] not in before)
    updated = len(parsed.rows) - created
    answer = json.dumps({"created": created, "updated": updated, "rejected": parsed.rejected})  # large: here too
    return answer, f"{created} created, {updated} updated, {len(parsed.rejected)} refused"
