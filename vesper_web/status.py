"""GET /api/status and GET /healthz/pipeline: can the console see (SPEC §11; shared/pipeline.py decides)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from shared import pipeline, store
from shared.config import Config
from vesper_web.db import PG_UNAVAILABLE, get_db

bp = Blueprint("status", __name__)


def _bridge(app: Flask) -> pipeline.Bridge | None:
    """This worker's bridge and since when it is in its state (its own record)."""
    bridge = app.extensions.get("vesper_bridge")
    if bridge is None:
        return None  # an app without a bridge (tests, scripts): nothing of a stream to judge
    return pipeline.Bridge(bool(bridge.connected), bridge.since)


def snapshot(now: float) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The ingest's recorded state, and the pipeline's state now as GET /api/status answers it."""
    cfg: Config = current_app.config["VESPER"]
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        state = pipeline.parse_state(store.get_meta(get_db(), pipeline.STATE_KEY))
    except (*PG_UNAVAILABLE, store.StoreUnavailable) as exc:  # said as a problem: the banner shows it (§16)
        return None, pipeline.unreadable(exc, _bridge(app), now, cfg.web.stale_after_s)
    return state, pipeline.assess(state, _bridge(app), now, cfg.web.stale_after_s)


def current() -> dict[str, Any]:
    """The pipeline's state now."""
    return snapshot(time.time())[1]


def liveness_as_of() -> str | None:
    """Since when device liveness is not current (the ingest cannot see), for device objects; None while it is."""
    return current()["liveness_as_of"]


@bp.get("/api/status")
def status() -> ResponseReturnValue:
    """Whether the console sees: ok, the problems as sentences, the ingest, this worker's bridge, data_as_of.
    ---
    get:
      responses: {200: Status}
    """
    return jsonify(current())


@bp.get("/healthz/pipeline")
def healthz_pipeline() -> ResponseReturnValue:
    """200 while the pipeline is ok, else 503, with the problems: for an external uptime checker.
    ---
    get:
      security: []
      responses:
        200: {description: the pipeline is ok, content: {application/json: {schema: {type: object}}}}
        503: {description: "the problems, as sentences", content: {application/json: {schema: {type: object}}}}
    """
    found = current()
    return jsonify({"ok": found["ok"], "problems": found["problems"], "data_as_of": found["data_as_of"]}), (
        200 if found["ok"] else 503
    )
