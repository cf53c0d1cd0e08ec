"""The API's description (§7): OpenAPI 3.1 at /api/openapi.json, generated from the routes; Swagger UI at /api/docs.

Library: apispec. It documents the Flask views as they are: each view's docstring holds its
operation after `---`, the schemas they share are written once (openapi_schemas.py), and nothing
in request handling changes. flask-smorest and spectree were the alternatives: both derive the
document from the models they validate requests with (marshmallow, pydantic), so adopting either
means moving device_query.py's and registry_rules.py's rules, and their errors that name the
field, into that validation: a second home for each rule. apispec-webframeworks' FlaskPlugin was
tried too: it documents a view's first rule only (health_check's first is its empty-id alias), so
the url_map is walked here instead, which also makes "every /api route" the very list described.
Swagger UI comes from flask-swagger-ui (Swagger UI 5, kept current; swagger-ui-bundle still ships
4.15, which cannot render OpenAPI 3.1).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import flask_swagger_ui
from apispec import APISpec, yaml_utils
from flask import Blueprint, Flask, current_app, jsonify, render_template, send_from_directory
from flask.typing import ResponseReturnValue
from werkzeug.routing import Rule

from vesper_web import csrf, openapi_audit, openapi_bulk, openapi_history
from vesper_web.openapi_events import EVENT_PARAMETERS
from vesper_web.openapi_schemas import (
    ASSETS,
    HEADERS,
    RESPONSES,
    SCHEMAS,
    security_schemes,
)
from vesper_web.openapi_schemas import PARAMETERS as SHARED_PARAMETERS

bp = Blueprint("openapi", __name__, url_prefix="/api")
PARAMETERS = {**SHARED_PARAMETERS, **EVENT_PARAMETERS, **openapi_history.PARAMETERS, **openapi_audit.PARAMETERS}

# Swagger UI's files from the flask-swagger-ui package (its blueprint is not used: its page has an inline script).
SWAGGER_UI = Path(flask_swagger_ui.__file__).parent / "dist"
RULE_ARG = re.compile(r"<(?:[^<>]*:)?([^<>:]+)>")
METHODS = ("get", "put", "post", "patch", "delete")
TAGS = {
    "api": "fleet", "registry": "registry", "notifications": "notifications", "openapi": "description",
    "stream": "stream", "healthz": "health", "status": "health", "metrics": "health",
    "history": "history", "audit": "audit",
}  # fmt: skip
DESCRIPTION = (
    'The Vesper Console\'s JSON API. Every error is `{"error": "..."}` with its status. When `[auth]` '
    "configures users or tokens, each request needs the console's session cookie (sign in at /login) or "
    "`Authorization: Bearer <token>`; without them the console answers only on a loopback host name and needs "
    f"neither. A browser's state-changing request must be same-origin and send `{csrf.HEADER}: {csrf.HEADER_VALUE}` "
    "(or the session's CSRF token); a bearer token never needs either. The console itself is at [/](/)."
)


# What is not an API: the console's HTML pages and its sign-in forms, and its static files. Everything else
# (the /api routes, /events/stream, /healthz, /healthz/pipeline, /metrics) is described.
CONSOLE = {
    "console.devices", "console.device", "console.events", "console.silences", "notifications.page",
    "login.login", "login.logout", "console.static", "console.rules",
    "console.device_history", "console.reports", "audit.page",
}  # fmt: skip


def api_rules(app: Flask) -> list[Rule]:
    """The rules described: all but the console's pages and files and aliases that defaults fill in."""
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint not in CONSOLE and not rule.defaults]


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: <converter:name> becomes {name}."""
    return RULE_ARG.sub(r"{\1}", rule)


def _operations(app: Flask, rule: Rule) -> dict[str, Any]:
    """The rule's operations from its view's docstring (after `---`), completed with what every operation has."""
    doc = app.view_functions[rule.endpoint].__doc__ or ""
    found = yaml_utils.load_operations_from_docstring(doc)
    operations = {}
    for method in METHODS:
        if method.upper() not in (rule.methods or ()) or method not in found:
            continue  # a route without its description stays out, and tests/test_openapi.py says so
        operation = {"summary": doc.strip().splitlines()[0], "operationId": rule.endpoint, **found[method]}
        operation.setdefault("tags", [TAGS.get(rule.endpoint.split(".")[0], "other")])
        given = operation.get("parameters", [])
        named = {p["name"] if isinstance(p, dict) else PARAMETERS[p]["name"] for p in given}
        parameters = [name for name in sorted(rule.arguments) if name not in named] + given
        if parameters:
            operation["parameters"] = parameters
        responses = {str(code): value for code, value in operation.get("responses", {}).items()}
        if operation.get("security") != []:  # open to all (auth.OPEN_ENDPOINTS): no sign-in to refuse
            responses.setdefault("401", "Unauthorized")
            responses.setdefault("403", "Forbidden")
        if "requestBody" in operation:
            responses.setdefault("413", "PayloadTooLarge")
        operation["responses"] = dict(sorted(responses.items()))
        operations[method] = operation
    return operations


def describe(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's /api routes."""
    try:
        version = metadata.version("vesper-console")
    except metadata.PackageNotFoundError:
        version = "0"
    schemes = security_schemes(app.config["SESSION_COOKIE_NAME"])
    security = [{name: []} for name in schemes]
    spec = APISpec("Vesper Console API", version, "3.1.0", info={"description": DESCRIPTION}, security=security)
    schemas, responses = dict(SCHEMAS), dict(RESPONSES)
    openapi_bulk.extend(schemas, responses)  # the bulk actions' components, kept apart
    openapi_history.extend(schemas, responses)  # history's (§13)
    openapi_audit.extend(schemas, responses)  # the audit log's (§14)
    for name, schema in schemas.items():
        spec.components.schema(name, schema)
    for name, header in HEADERS.items():
        spec.components.header(name, header, lazy=True)
    for name, parameter in PARAMETERS.items():
        spec.components.parameter(name, parameter["in"], parameter, lazy=True)
    for name, response in responses.items():
        spec.components.response(name, response, lazy=True)
    for name, scheme in schemes.items():
        spec.components.security_scheme(name, scheme)
    for rule in api_rules(app):
        operations = _operations(app, rule)
        if operations:
            spec.path(openapi_path(rule.rule), operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def document() -> ResponseReturnValue:
    """This description of the API (OpenAPI 3.1), generated from the routes and their views' docstrings.
    ---
    get:
      responses:
        200: {description: the OpenAPI document, content: {application/json: {schema: {type: object}}}}
    """
    found = current_app.extensions.get("vesper_openapi")
    if found is None:
        found = current_app.extensions["vesper_openapi"] = describe(current_app)
    return jsonify(found)


@bp.get("/docs")
def docs() -> str:
    """The description rendered by Swagger UI, every file of it served by the console itself.
    ---
    get:
      responses:
        200: {description: the page, content: {text/html: {schema: {type: string}}}}
    """
    return render_template("api_docs.html")


@bp.get(f"/docs/<any({', '.join(repr(name) for name in ASSETS)}):asset>")
def asset(asset: str) -> ResponseReturnValue:
    """Swagger UI's stylesheet and script, from the flask-swagger-ui package.
    ---
    get:
      responses:
        200:
          description: the file
          content: {text/css: {schema: {type: string}}, text/javascript: {schema: {type: string}}}
        404: NotFound
    """
    return send_from_directory(SWAGGER_UI, asset, max_age=86400)
