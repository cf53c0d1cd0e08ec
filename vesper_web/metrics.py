"""GET /metrics: the ingest's counters (through SQLite) and this worker's own, through prometheus_client."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from shared import store
from shared.vocabulary import TOPIC_KINDS
from vesper_web import audit_trail, status
from vesper_web.db import get_db
from vesper_web.hub import Hub
from vesper_web.notifications import channel_names

bp = Blueprint("metrics", __name__)

LABELLED = {"messages": "kind", "rejected": "reason", "events": "type"}  # ingest counter prefix -> label
HELP = {
    "messages": "Messages the ingest received, by topic kind.",
    "rejected": "Device messages the ingest rejected, by reason.",
    "events": "Events the ingest classified and stored, by type.",
    "events.published": "Events the ingest published after their commit.",
    "events.published_late": "Events published from the backlog (broker away or process restarted).",
    "events.republished": "Events sent again after a reconnect because the broker had not confirmed them.",
    "messages.redelivered": "Alert messages recognised as the broker's redelivery of ones already applied.",
    "alerts.msg_truncated": "Alerts applied with a msg over 1 KiB, cut to 1024 characters ending in an ellipsis.",
    "heartbeats.firmware_refused": "Heartbeats applied whose firmware value was not a version to store (§12).",
    "mqtt.connects": "Times the ingest connected to the broker.",
    "mqtt.disconnects": "Times the ingest lost the broker.",
}
NOTIFY_PREFIX = "notify."  # notify.<status>.<channel>: the notifier's own families, not vesper_ingest_*
NOTIFY_COUNTERS = {
    "sent": "Notifications delivered, by channel.",
    "failed": "Notification delivery attempts that failed (each is retried until give_up_after_s), by channel.",
    "dropped": "Notifications given up on (undeliverable for give_up_after_s), by channel.",
}


def _sanitise(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def ingest_metrics(counters: dict[str, int]) -> list[CounterMetricFamily]:
    """The ingest's persistent counters (`messages.alerts`, `rejected.not_json`, ...) as families.

    `messages.<kind>`, `rejected.<reason>` and `events.<type>` become one family each with a label;
    every other counter (`events.published`, `mqtt.connects`, ...) a family of its own.
    """
    labelled: dict[str, dict[str, int]] = {}
    families: dict[str, CounterMetricFamily] = {}
    by_kind = {f"messages.{k}": 0 for k in TOPIC_KINDS}  # a kind never seen yet still reads 0
    for name, value in {**by_kind, **counters}.items():
        if name.startswith(NOTIFY_PREFIX):
            continue  # notify_metrics renders these
        prefix, _, rest = name.partition(".")
        if prefix in LABELLED and rest and name not in HELP:
            labelled.setdefault(prefix, {})[rest] = value
        else:
            family = f"vesper_ingest_{_sanitise(name)}_total"
            families[family] = CounterMetricFamily(family, HELP.get(name, f"Ingest counter {name}."), value=value)
    for prefix, values in labelled.items():
        family = CounterMetricFamily(f"vesper_ingest_{prefix}_total", HELP[prefix], labels=[LABELLED[prefix]])
        for rest in sorted(values):
            family.add_metric([rest], values[rest])
        families[f"vesper_ingest_{prefix}_total"] = family
    return [families[name] for name in sorted(families)]


def notify_metrics(
    counters: dict[str, int], stats: dict[str, dict[str, float]], channels: Iterable[str]
) -> list[Metric]:
    """Per channel: delivered, failed attempts, dropped (the ingest's counters), and the queue now."""
    # Every configured channel appears (0 before its first message); one that left the config keeps its history.
    counted: dict[str, dict[str, int]] = {status: {} for status in NOTIFY_COUNTERS}
    for name, value in counters.items():
        status, _, channel = name.removeprefix(NOTIFY_PREFIX).partition(".")
        if name.startswith(NOTIFY_PREFIX) and status in counted and channel:
            counted[status][channel] = value
    names = sorted({*channels, *stats, *(c for per in counted.values() for c in per)})
    families: list[Metric] = []
    for status, help_text in NOTIFY_COUNTERS.items():
        family = CounterMetricFamily(f"vesper_notify_{status}_total", help_text, labels=["channel"])
        for channel in names:
            family.add_metric([channel], counted[status].get(channel, 0))
        families.append(family)
    pending = GaugeMetricFamily(
        "vesper_notify_pending", "Notifications not yet delivered (pending or failed), by channel.", labels=["channel"]
    )
    oldest = GaugeMetricFamily(
        "vesper_notify_oldest_pending_age_seconds",
        "Age of the oldest notification not yet delivered (0 when none), by channel.",
        labels=["channel"],
    )
    for channel in names:
        queue = stats.get(channel, {})
        pending.add_metric([channel], queue.get("pending", 0) + queue.get("failed", 0))
        oldest.add_metric([channel], queue.get("oldest_age_s", 0.0))
    return [*families, pending, oldest]


def worker_metrics(hub: Hub, bridge: object | None) -> list[Metric]:
    """This gunicorn worker's own: stream clients, drops, fills from SQLite, the bridge."""
    stats = hub.stats()
    return [
        GaugeMetricFamily("vesper_web_stream_clients", "Stream clients this worker serves now.", stats["clients"]),
        CounterMetricFamily(
            "vesper_web_stream_dropped_total",
            "Stream clients dropped because they stopped reading (their queue was full).",
            stats["dropped"],
        ),
        CounterMetricFamily(
            "vesper_web_events_filled_total",
            "Events read from SQLite because MQTT did not bring them (holes, reconnects).",
            stats["filled_from_db"],
        ),
        CounterMetricFamily(
            "vesper_web_events_delivered_total",
            "Events this worker's hub delivered to its stream clients, each counted once.",
            getattr(bridge, "delivered", 0),
        ),
        CounterMetricFamily(
            "vesper_web_published_ignored_total",
            "Messages on the published topic that were not events SQLite holds (garbage, forged ids).",
            hub.bad,
        ),
        CounterMetricFamily(
            "vesper_web_published_malformed_total",
            "Of the ignored messages, those that were not a well-formed event or batch (dropped, nothing moved).",
            hub.malformed,
        ),
        GaugeMetricFamily(
            "vesper_web_bridge_connected",
            "1 while this worker's MQTT bridge is connected to the broker.",
            int(bool(getattr(bridge, "connected", False))),
        ),
        CounterMetricFamily(
            "vesper_web_bridge_reconnects_total",
            "Times this worker's bridge connected again after its first connection.",
            getattr(bridge, "reconnects", 0),
        ),
        GaugeMetricFamily("vesper_web_last_event_id", "Highest event id this worker delivered in order.", hub.last_id),
    ]


def pipeline_metrics(state: dict[str, Any] | None, ok: bool, now: float) -> list[Metric]:
    """Whether the console sees (SPEC §11): the ingest's last sweep, its broker connection, the verdict."""
    age = now - float(state["last_sweep_at"]) if state else float("nan")  # NaN: the ingest never reported
    return [
        GaugeMetricFamily(
            "vesper_ingest_last_sweep_age_seconds", "Seconds since the leading ingest last recorded a sweep.", age
        ),
        GaugeMetricFamily(
            "vesper_ingest_broker_connected",
            "1 while the ingest (as of its last sweep) is connected to the broker.",
            int(bool(state and state.get("broker_connected"))),
        ),
        GaugeMetricFamily("vesper_pipeline_ok", "1 while GET /api/status answers ok (this worker's view).", int(ok)),
    ]


class VesperCollector(Collector):
    """The ingest's counters as last saved (each sweep), then this worker's; read at every scrape."""

    def collect(self) -> Iterator[Metric]:
        """Families for the app of the current request (its SQLite, its hub and bridge)."""
        hub, bridge = current_app.extensions["vesper_hub"], current_app.extensions.get("vesper_bridge")
        counters = store.counters(get_db())
        yield from ingest_metrics(counters)
        stats = store.queue_stats(get_db(), time.time())
        yield from notify_metrics(counters, stats, channel_names(current_app.config["VESPER"]))
        yield from worker_metrics(hub, bridge)
        yield CounterMetricFamily(
            "vesper_web_audit_failed_total",
            "Audit entries this worker could not store (each logged; the request's own answer stood).",
            audit_trail.failed(),
        )
        now = time.time()
        state, seen = status.snapshot(now)
        yield from pipeline_metrics(state, seen["ok"], now)


def make_registry() -> CollectorRegistry:
    """A registry of this app's own (never the global one): Vesper's families, process and platform."""
    registry = CollectorRegistry()
    registry.register(VesperCollector())
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


@bp.record_once
def _registry(state: BlueprintSetupState) -> None:
    """One registry per app: tests build many apps in one process."""
    state.app.extensions["vesper_metrics"] = make_registry()


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition, rendered by prometheus_client from this app's registry.
    ---
    get:
      responses:
        200: {description: the metrics, content: {text/plain: {schema: {type: string}}}}
    """
    return Response(generate_latest(current_app.extensions["vesper_metrics"]), content_type=CONTENT_TYPE_LATEST)
