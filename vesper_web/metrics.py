"""GET /metrics: the ingest's counters (through SQLite) and this worker's own, as Prometheus text."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app

from shared import store
from shared.topics import KINDS
from vesper_web.db import get_db
from vesper_web.hub import Hub

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
PUBLISHING = ("published", "published_late", "republished")  # events.<these> are not event types
LABELLED = {"messages": "kind", "rejected": "reason", "events": "type"}  # ingest counter prefix -> label
HELP = {
    "messages": "Messages the ingest received, by topic kind.",
    "rejected": "Device messages the ingest rejected, by reason.",
    "events": "Events the ingest classified and stored, by type.",
    "events.published": "Events the ingest published after their commit.",
    "events.published_late": "Events published from the backlog (broker away or process restarted).",
    "events.republished": "Events sent again after a reconnect because the broker had not confirmed them.",
    "messages.redelivered": "Alert messages recognised as the broker's redelivery of ones already applied.",
    "mqtt.connects": "Times the ingest connected to the broker.",
    "mqtt.disconnects": "Times the ingest lost the broker.",
}


@dataclass
class Metric:
    """One metric family: name, type, help, and its samples as (labels, value)."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return _escape_help(value).replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def render(metrics: Iterable[Metric]) -> str:
    """Prometheus text exposition format 0.0.4: HELP and TYPE once per family, then its samples."""
    lines: list[str] = []
    for metric in metrics:
        if not NAME_RE.fullmatch(metric.name) or metric.kind not in ("counter", "gauge"):
            raise ValueError(f"bad metric {metric.name!r} of type {metric.kind!r}")
        lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            if not all(LABEL_RE.fullmatch(k) for k in labels):
                raise ValueError(f"bad label name in {labels!r}")
            inside = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            lines.append(f"{metric.name}{{{inside}}} {_number(value)}" if inside else f"{metric.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _sanitise(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def ingest_metrics(counters: dict[str, int]) -> list[Metric]:
    """The ingest's persistent counters (`messages.alerts`, `rejected.not_json`, ...) as families.

    `messages.<kind>`, `rejected.<reason>` and `events.<type>` become one family each with a label;
    every other counter (`events.published`, `mqtt.connects`, ...) a family of its own.
    """
    families: dict[str, Metric] = {}
    by_kind = {f"messages.{k}": 0 for k in KINDS}  # a kind never seen yet still reads 0
    for name, value in {**by_kind, **counters}.items():
        prefix, _, rest = name.partition(".")
        label = LABELLED.get(prefix)
        if label and rest and name not in HELP:
            family = f"vesper_ingest_{prefix}_total"
            metric = families.setdefault(family, Metric(family, "counter", HELP[prefix]))
            metric.samples.append(({label: rest}, value))
        else:
            family = f"vesper_ingest_{_sanitise(name)}_total"
            families[family] = Metric(family, "counter", HELP.get(name, f"Ingest counter {name}."), [({}, value)])
    for metric in families.values():
        metric.samples.sort(key=lambda s: sorted(s[0].items()))
    return sorted(families.values(), key=lambda m: m.name)


def worker_metrics(hub: Hub, bridge: object | None) -> list[Metric]:
    """This gunicorn worker's own: stream clients, drops, fills from SQLite, the bridge."""
    stats = hub.stats()

    def one(name: str, kind: str, text: str, value: float) -> Metric:
        return Metric(name, kind, text, [({}, value)])

    return [
        one("vesper_web_stream_clients", "gauge", "Stream clients this worker serves now.", stats["clients"]),
        one(
            "vesper_web_stream_dropped_total",
            "counter",
            "Stream clients dropped because they stopped reading (their queue was full).",
            stats["dropped"],
        ),
        one(
            "vesper_web_events_filled_total",
            "counter",
            "Events read from SQLite because MQTT did not bring them (holes, reconnects).",
            stats["filled_from_db"],
        ),
        one(
            "vesper_web_events_delivered_total",
            "counter",
            "Events this worker's hub delivered to its stream clients, each counted once.",
            getattr(bridge, "delivered", 0),
        ),
        one(
            "vesper_web_published_ignored_total",
            "counter",
            "Messages on the published topic that were not events SQLite holds (garbage, forged ids).",
            hub.bad,
        ),
        one(
            "vesper_web_bridge_connected",
            "gauge",
            "1 while this worker's MQTT bridge is connected to the broker.",
            int(bool(getattr(bridge, "connected", False))),
        ),
        one(
            "vesper_web_bridge_reconnects_total",
            "counter",
            "Times this worker's bridge connected again after its first connection.",
            getattr(bridge, "reconnects", 0),
        ),
        one("vesper_web_last_event_id", "gauge", "Highest event id this worker delivered in order.", hub.last_id),
    ]


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text: the ingest's counters as last saved (each sweep), then this worker's."""
    hub, bridge = current_app.extensions["vesper_hub"], current_app.extensions.get("vesper_bridge")
    body = render(ingest_metrics(store.counters(get_db())) + worker_metrics(hub, bridge))
    return Response(body, content_type=CONTENT_TYPE)
