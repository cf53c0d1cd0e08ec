"""The request's read-only connection (Flask tutorial style: get_db, close_db, init_app); PostgreSQL's pooled."""

from __future__ import annotations

from flask import Flask, current_app, g

from shared import store


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


def init_app(app: Flask) -> None:
    """Create or migrate the schema (the web may start before the ingest ever ran); close per request."""
    store.open_store(app.config["VESPER"].database.target).close()
    app.teardown_appcontext(close_db)
