"""The request's read-only connection (Flask tutorial style: get_db, close_db, init_app); PostgreSQL's pooled."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import ServiceUnavailable

from shared import store
from shared.ratelog import RateLimitedLog
from shared.store.postgres import TRANSIENT as PG_UNAVAILABLE

log = logging.getLogger(__name__)
_unavailable_log = RateLimitedLog(log, 10.0)
UNAVAILABLE = "the database does not answer (no primary: a failover?); try again"


def get_db() -> store.Connection:
    """This request's read-only connection, opened on first use."""
    if "db" not in g:
        g.db = store.connect(current_app.config["VESPER"].database.target, readonly=True, pooled=True)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    """Close the request's connection, if one was opened."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def unavailable(exc: Exception) -> ResponseReturnValue:
    """PostgreSQL lost or not answering (a failover, SPEC §16): 503, so /healthz/pipeline says not ok; not a 500."""
    _unavailable_log.warning("pg", "a request could not read the database: %s", exc)
    return current_app.handle_http_exception(ServiceUnavailable(UNAVAILABLE))


def init_app(app: Flask) -> None:
    """Create or migrate the schema (the web may start before the ingest ever ran); close per request."""
    store.open_store(app.config["VESPER"].database.target).close()
    app.teardown_appcontext(close_db)
    for error in PG_UNAVAILABLE:
        app.register_error_handler(error, unavailable)
