"""Server-Sent Events framing: a small pure formatter (WHATWG HTML, server-sent events)."""

from __future__ import annotations

import json
import re

RETRY_MS = 3000
CONNECTED = json.dumps({"type": "connected"})
# Only these end an SSE line. str.splitlines() would also split on U+2028 or U+0085, which
# JSON leaves unescaped inside strings: the client would rejoin them as "\n" and break the JSON.
NEWLINE = re.compile(r"\r\n|\r|\n")


def frame(
    data: str | None = None,
    *,
    id: int | str | None = None,
    event: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """One SSE message as UTF-8 bytes; multi-line data becomes several data: lines."""
    lines: list[str] = []
    if comment is not None:
        lines.extend(f": {line}" for line in NEWLINE.split(comment))
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    if id is not None:
        lines.append(f"id: {_one_line(str(id))}")
    if event is not None:
        lines.append(f"event: {_one_line(event)}")
    if data is not None:
        lines.extend(f"data: {line}" for line in NEWLINE.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def _one_line(value: str) -> str:
    """A field that must stay on one line; a newline would end it and start another field."""
    if NEWLINE.search(value) or "\0" in value:
        raise ValueError("SSE id and event fields cannot hold line breaks or NUL")
    return value


def connected() -> bytes:
    """The first message of every stream: the reconnect delay and {"type": "connected"}."""
    return frame(CONNECTED, retry=RETRY_MS)


def keepalive() -> bytes:
    """A comment that keeps proxies from closing an idle stream."""
    return frame(comment="keepalive")


def event(event_id: int, event_json: str) -> bytes:
    """One classified event: its id, and its JSON as the data."""
    return frame(event_json, id=event_id)
