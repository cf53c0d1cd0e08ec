"""Bulk actions (§12): silence, health-check, tag or untag every device a filter matches; each one audited.

The filter is the device list's (the console sends the one in its URL). At most `web.bulk_max` devices:
more is refused before anything is done. `"dry_run": true` answers how many match and does nothing (the
console asks it before its confirmation). The devices are those matching when the request is read; a
tag's change is then one transaction, a silence one row, a health check a paced background run.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from shared import store
from shared.silences import Silence
from vesper_web import auth, bulk_checks, bulk_rules, device_query
from vesper_web.bulk_rules import BulkRequest
from vesper_web.db import get_db
from vesper_web.lifecycle import _who as who
from vesper_web.offload import off_the_loop
from vesper_web.registry import BUSY, transaction, writing
from vesper_web.registry_rules import MAX_TAGS

bp = Blueprint("bulk", __name__, url_prefix="/api")
RUN = "vesper_bulk_checks"  # app.extensions: this worker's bulk health check in progress


def _audit(req: BulkRequest, detail: str) -> None:
    """One line per bulk action: who, the action, the filter as given (repr: its strings are untrusted), what."""
    auth.audit.info("bulk %s by %s from %s: filter %r, %s", req.action, who(), request.remote_addr, req.given, detail)


def _matching(req: BulkRequest, cap: int) -> tuple[list[str], int]:
    """The ids the filter matches (at most cap) and how many match; a filter breaking its rule is a 400."""
    try:
        query = device_query.parse(req.filter)
    except BadRequest as exc:
        abort(400, f"filter.{exc.description}")
    return store.matching_ids(get_db(), query, cap)


@bp.post("/bulk")
def bulk() -> ResponseReturnValue:
    """Act on every device a filter matches: silence, health_check, add_tag or remove_tag; answers the count done.
    ---
    post:
      description: |
        The filter is the device list's (q, health, tag, site, firmware), as an object. At most web.bulk_max
        devices, else 400 and nothing done; "dry_run": true answers the count and does nothing.
        silence: one silence (duration_s or ends_at, comment, subsystem, starts_at as POST /api/silences):
        a filter of only one tag silences that tag and only a site that site (devices joining them later
        included); any other filter silences the list of devices it matches now.
        add_tag / remove_tag: one transaction; count is the devices changed (one that already had the tag, or
        lacked it, is not counted; one at 16 tags is left as it is and counted in full). A device seen but never
        registered gets a registry entry holding the tag.
        health_check: 202 at once; the commands go out in the background at web.bulk_health_checks_per_s, a
        device checked within web.health_check_interval_s is skipped; one run per worker at a time (409).
      requestBody:
        required: true
        content: {application/json: {schema: BulkRequest}}
      responses: {200: BulkDone, 201: BulkSilenced, 202: BulkQueued, 400: BadRequest, 409: BulkRunning,
                  503: Unavailable}
    """
    now = time.time()
    req = bulk_rules.parse(request.get_data(), now)
    cap = current_app.config["VESPER"].web.bulk_max
    ids, matched = _matching(req, cap)
    if matched > cap:
        abort(400, f"filter: matches {matched:,} devices, more than web.bulk_max ({cap:,}); narrow it")
    answer: dict[str, Any] = {"action": req.action, "matched": matched}
    if req.dry_run:
        return jsonify({**answer, "count": 0, "dry_run": True, "max": cap})
    if req.action == "health_check":
        return _health_checks(req, ids, answer)
    if req.action == "silence":
        return _silence(req, ids, answer, now)
    return _tags(req, ids, answer, now)


def _silence(req: BulkRequest, ids: list[str], answer: dict[str, Any], now: float) -> ResponseReturnValue:
    """One silence row: by tag or site when the filter is only that, else by the list of matched ids."""
    if not ids:
        return jsonify({**answer, "count": 0})
    matchers = bulk_rules.silence_matchers(req.filter) or {}
    if auth.sites() is not None and "tag" in matchers:
        matchers = {}  # a tag reaches other sites (§14): a token limited to sites silences the list it matched
    listed = None if matchers else frozenset(ids)
    silence = Silence(0, None, matchers.get("tag"), created_by=who(), created_at=now, site=matchers.get("site"),
                      device_ids=listed, **req.fields)  # fmt: skip
    with writing() as conn:
        silence_id = store.add_silence(conn, silence)
        created = next(s for s in store.silences(conn, now) if s.id == silence_id)
    by = f"tag {created.tag!r}" if created.tag else f"site {created.site!r}" if created.site else "device list"
    _audit(req, f"{len(ids)} devices: silence {silence_id} by {by}")
    return jsonify({**answer, "count": len(ids), "silence": store.silence_dict(created)}), 201


def _tag_change(target: str, action: str, ids: list[str], tag: str, now: float) -> dict[str, int]:
    """The tag written in one transaction (off the worker's loop: up to bulk_max devices)."""
    with transaction(target) as conn:
        if action == "add_tag":
            return store.bulk_add_tag(conn, ids, tag, MAX_TAGS, now)
        return store.bulk_remove_tag(conn, ids, tag, now)


def _tags(req: BulkRequest, ids: list[str], answer: dict[str, Any], now: float) -> ResponseReturnValue:
    """add_tag / remove_tag: the count is the devices changed."""
    target = current_app.config["VESPER"].database.target
    try:
        counts = off_the_loop(_tag_change, target, req.action, ids, req.fields["tag"], now)
    except store.StoreUnavailable:
        abort(503, BUSY)
    _audit(req, f"tag {req.fields['tag']!r}: {counts['changed']} of {len(ids)} devices changed")
    return jsonify({**answer, "count": counts.pop("changed"), **counts})


def _health_checks(req: BulkRequest, ids: list[str], answer: dict[str, Any]) -> ResponseReturnValue:
    """Start the paced run and answer 202 with how many commands it will send (fewer if some are skipped)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    running: bulk_checks.Run | None = app.extensions.get(RUN)
    if running is not None and not running.done:
        done = running.sent + running.skipped
        abort(409, f"a bulk health check is under way ({done:,} of {running.total:,}); try when it ends")
    bridge = app.extensions.get("vesper_bridge")
    if bridge is None or not bridge.connected:
        auth.audit.warning("bulk health_check by %s from %s: not sent, broker unreachable", who(), request.remote_addr)
        abort(503, "the MQTT broker is unreachable; try again")
    cfg = app.config["VESPER"]
    per_s = cfg.web.bulk_health_checks_per_s
    sender = bulk_checks.Sender(cfg.mqtt.topic_prefix, bridge, app.extensions["vesper_command_limit"])
    actor, client, given = who(), request.remote_addr, req.given

    def told(run: bulk_checks.Run) -> None:
        level = auth.audit.warning if run.failed else auth.audit.info
        level("bulk health_check by %s from %s ended: filter %r, %s", actor, client, given, run.summary())

    app.extensions[RUN] = bulk_checks.start(ids, sender, per_s, told)
    _audit(req, f"{len(ids)} devices: health checks at {per_s:g}/s")
    return jsonify({**answer, "count": len(ids), "per_s": per_s, "eta_s": round(len(ids) / per_s, 1)}), 202
