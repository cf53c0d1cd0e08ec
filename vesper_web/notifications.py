"""Notifications in the web (docs/notifications.md#seen-by-operators): the log, a test message, the page.

The ingest decides and sends; the web only reads the `notifications` table and, for a test,
queues one message there with a short-lived write connection that the channel's worker in the
ingest picks up within about a second.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from shared import store
from shared.config import Config
from shared.notify_text import trial_message
from vesper_web import auth
from vesper_web.api import int_arg
from vesper_web.db import get_db

bp = Blueprint("notifications", __name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_ECHO = 64  # of an unknown channel name in an error


def channel_names(cfg: Config) -> list[str]:
    """The configured channels' names, in config order."""
    return [channel.name for channel in cfg.notify.channels]


@bp.get("/api/notifications")
def notifications() -> ResponseReturnValue:
    """The delivery log, newest first: `{"notifications": [...]}` (?limit=1..1000, default 50).
    ---
    get:
      parameters: [notifications_limit]
      responses: {200: Notifications, 400: BadRequest}
    """
    limit = int_arg("limit", DEFAULT_LIMIT, minimum=1)
    if limit > MAX_LIMIT:
        abort(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return jsonify({"notifications": store.notifications(get_db(), limit)})


def _requested_channel() -> str:
    """The `channel` of a JSON object body, or a 400; a 404 when no such channel is configured."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, 'send a JSON object: {"channel": "NAME"}')
    channel = body.get("channel")
    if not isinstance(channel, str):
        abort(400, "channel must be a string naming a configured channel")
    if channel not in channel_names(current_app.config["VESPER"]):
        abort(404, f"no channel named {channel[:MAX_ECHO]}")
    return channel


def _enqueue_test(path: str, channel: str) -> int:
    """Queue the test message in its own short write transaction; StoreUnavailable when SQLite is busy."""
    title, body, notify_type = trial_message(channel)
    with store.guarded():
        conn = store.connect(path)
        try:
            with store.write(conn):
                return store.enqueue(conn, channel, title, body, notify_type, [], time.time())
        finally:
            conn.close()


@bp.post("/api/notify/test")
def notify_test() -> ResponseReturnValue:
    """Queue a test message to one channel; the ingest's worker for it sends it (202). Audited.
    ---
    post:
      requestBody: {required: true, content: {application/json: {schema: NotifyTest}}}
      responses: {202: Queued, 400: BadRequest, 404: NotFound, 503: Unavailable}
    """
    channel = _requested_channel()
    who, client = auth.principal() or auth.LOCAL, request.remote_addr
    try:
        message_id = _enqueue_test(current_app.config["VESPER"].database.target, channel)
    except store.StoreUnavailable:
        auth.audit.warning("notify test to %s by %s from %s: not queued, database busy", channel, who, client)
        abort(503, "the database is busy; try again")
    auth.audit.info("notify test to %s by %s from %s: queued as message %d", channel, who, client, message_id)
    return jsonify({"id": message_id, "status": "pending"}), 202


@bp.get("/notifications")
def page() -> str:
    """The console's delivery log, with a "Send test" button per configured channel."""
    channels = channel_names(current_app.config["VESPER"])
    return render_template("notifications.html", page="notifications", channels=channels)
