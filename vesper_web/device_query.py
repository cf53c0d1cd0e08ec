"""The device list's query string (§7): parsed into a store.DeviceQuery, 400 naming the parameter; cursors; Link."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import abort, request
from werkzeug.datastructures import MultiDict

from shared import store
from shared.notify_config import TAG
from shared.severity import HEALTH_ORDER
from vesper_web import auth
from vesper_web.registry_rules import CONTROL, MAX_TEXT

MAX_LIMIT = 1000
MAX_Q = 128
MAX_FILTER_TAGS = 16
MAX_FIRMWARE = 64  # what the ingest stores of a heartbeat's firmware version (vesper_ingest/firmware.py)
SORT_LIST = ", ".join(store.SORTS)
INT64 = 2**63


Args = MultiDict[str, str]


def _text(args: Args, name: str, limit: int) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit or CONTROL.search(value):
        abort(400, f"{name}: at most {limit} characters, without control characters")
    return value


def _health(args: Args) -> tuple[str, ...]:
    raw = args.get("health")
    if not raw:
        return ()
    wanted = tuple(dict.fromkeys(raw.split(",")))
    if any(h not in HEALTH_ORDER for h in wanted):
        abort(400, f"health: a comma list of {', '.join(HEALTH_ORDER)}")
    return wanted


def _tags(args: Args) -> tuple[str, ...]:
    tags = tuple(dict.fromkeys(args.getlist("tag")))
    if len(tags) > MAX_FILTER_TAGS or not all(TAG.fullmatch(t) for t in tags):
        abort(400, f"tag: at most {MAX_FILTER_TAGS}, each [a-z0-9][a-z0-9_.:-]{{0,31}}")
    return tags


def limit(args: Args, default: int | None = None, maximum: int = MAX_LIMIT) -> int | None:
    """`limit`: an integer from 1 to maximum (every paged route's rule); `default` when it is not given."""
    raw = args.get("limit")
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        abort(400, f"limit: an integer from 1 to {maximum}")
    return int(raw)


def _sort(args: Args) -> str:
    sort = args.get("sort") or "id"
    if sort not in store.SORTS:
        abort(400, f"sort: one of {SORT_LIST}")
    return sort


def parse(given: Args | Mapping[str, Any] | None = None) -> store.DeviceQuery:
    """The request's query (or a filter given as a mapping, as a bulk action's), or a 400 naming the parameter;
    within the caller's sites when it is limited to some (§14)."""
    args = request.args if given is None else given if isinstance(given, MultiDict) else MultiDict(given)
    sort = _sort(args)
    size = limit(args)
    after = decode_cursor(args["cursor"], sort) if args.get("cursor") else None
    if after is not None and size is None:
        abort(400, "cursor: only with limit")
    return store.DeviceQuery(
        q=_text(args, "q", MAX_Q),
        health=_health(args),
        tags=_tags(args),
        site=_text(args, "site", MAX_TEXT["site"]),
        firmware=_text(args, "firmware", MAX_FIRMWARE),
        sort=sort,
        limit=size,
        after=after,
        sites=auth.sites(),
    )


def encode_cursor(sort: str, key: tuple[Any, ...]) -> str:
    """An opaque cursor: the sort and the last row's key, base64url JSON."""
    return base64.urlsafe_b64encode(json.dumps([sort, *key], separators=(",", ":")).encode()).decode().rstrip("=")


def _key_value(value: Any) -> bool:
    """What a sort key holds and SQLite binds: UTF-8 text, a 64-bit integer, a finite number."""
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)  # a lone surrogate binds as no text
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -INT64 <= value < INT64
    return isinstance(value, float) and math.isfinite(value)


def decode_cursor(cursor: str, sort: str) -> tuple[Any, ...]:
    """The key a cursor holds, or a 400 unless this list, with this sort, gave it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (ValueError, RecursionError, binascii.Error):  # RecursionError: a cursor of nested arrays
        decoded = None
    keys, _ = store.SORTS[sort]
    valid = (
        isinstance(decoded, list)
        and len(decoded) == len(keys) + 1
        and decoded[0] == sort
        and all(_key_value(v) for v in decoded[1:])
    )
    if not valid:
        abort(400, "cursor: not one this list gave with this sort; start again without it")
    return tuple(decoded[1:])


def next_link(query: store.DeviceQuery, rows: list[tuple[Any, ...]]) -> str | None:
    """The Link header's next page (RFC 8288) when more rows follow than the page holds."""
    if query.limit is None or len(rows) <= query.limit:
        return None
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    args.append(("cursor", encode_cursor(query.sort, store.sort_key(rows[query.limit - 1]))))
    return f'<{request.path}?{urlencode(args)}>; rel="next"'
