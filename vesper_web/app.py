"""The Flask app factory: API, stream and console blueprints, JSON errors, security headers."""

from __future__ import annotations

import json

from flask import Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.config import Config, ConfigError, load
from shared.exposure import exposure_error
from vesper_web import (
    api,
    audit,
    auth,
    bulk,
    console,
    db,
    headers,
    history,
    lifecycle,
    login,
    metrics,
    notifications,
    openapi,
    registry,
    status,
    stream,
)
from vesper_web.hub import Hub
from vesper_web.paths import answers_json


def create_app(config: Config | None = None) -> Flask:
    """Build the web app; it opens no broker connection (the gunicorn hook starts the bridge)."""
    cfg = config if config is not None else load()
    refusal = exposure_error(cfg, [cfg.web.bind])  # gunicorn.conf.py checks its real binds too
    if refusal:
        raise ConfigError(refusal)
    app = Flask("vesper_web", static_folder=None)  # the console blueprint serves /static
    if cfg.web.proxy_hops:
        hops = cfg.web.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]
    app.config["VESPER"] = cfg
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["vesper_hub"] = Hub(cfg.database.target, cfg.web.stream_queue_size, cfg.web.max_streams)
    db.init_app(app)
    auth.init_app(app, cfg)  # first before_request: nothing runs for a caller it turns away
    headers.init_app(app)
    app.register_error_handler(HTTPException, json_error)
    app.register_blueprint(api.bp)
    app.register_blueprint(stream.bp)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.register_blueprint(console.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(registry.bp)
    app.register_blueprint(lifecycle.bp)
    app.register_blueprint(bulk.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(history.bp)
    app.register_blueprint(audit.bp)  # and its recorder, after every request
    app.register_blueprint(openapi.bp)  # last: it describes the /api routes registered before it
    return app


def json_error(exc: HTTPException) -> ResponseReturnValue:
    """API, stream and health errors as {"error": "..."} with the status (and headers, e.g. Allow)."""
    if not answers_json(request.path):
        return exc  # the console's pages keep HTML errors
    response: Response = exc.get_response()
    response.set_data(json.dumps({"error": exc.description}))
    response.content_type = "application/json"
    return response


def healthz() -> ResponseReturnValue:
    """Process health and whether this worker's bridge is connected to the broker.
    ---
    get:
      description: "This web process's own health, for a load balancer (the pipeline's: /healthz/pipeline)."
      security: []
      responses:
        200: {description: up, content: {application/json: {schema: {type: object}}}}
    """
    hub: Hub = current_app.extensions["vesper_hub"]
    bridge = current_app.extensions.get("vesper_bridge")
    return jsonify(
        {
            "status": "ok",
            "bridge": {"connected": bool(bridge and bridge.connected), "last_event_id": hub.last_id},
            "streams": hub.stats(),
        }
    )
