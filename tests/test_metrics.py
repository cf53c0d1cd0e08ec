"""/metrics: the counter mapping, the worker's families, and the endpoint on a real store, via prometheus_client."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from flask import Flask
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from shared import config as config_mod
from shared import store
from vesper_web import create_app
from vesper_web.hub import Hub
from vesper_web.metrics import ingest_metrics, worker_metrics


class Fixed:
    """A collector that yields the families it was given, for rendering them alone."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> list[Metric]:
        return self.families


def render(families: Iterable[Metric]) -> str:
    return generate_latest(Fixed(families)).decode()


def samples(text: str) -> dict[str, float]:
    """Exposition text as {'name{labels}': value}, parsed by prometheus_client's own parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def make_app(tmp_path: Path, counters: Iterable[dict[str, int]] = ()) -> Flask:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "v.db"
    cfg = config_mod.replace(config_mod.Config(), database=config_mod.DatabaseConfig(path=str(path)))
    app = create_app(cfg)
    conn = store.open_store(path)
    for batch in counters:
        with store.write(conn):
            store.add_counters(conn, batch)
    conn.close()
    return app


def test_ingest_counters_become_labelled_families() -> None:
    text = render(
        ingest_metrics(
            {
                "messages.alerts": 7,
                "messages.redelivered": 2,
                "rejected.not_json": 3,
                "rejected.bad_device_id": 1,
                "events.alert": 5,
                "events.device_offline": 1,
                "events.published": 6,
                "events.published_late": 1,
                "events.republished": 0,
                "mqtt.connects": 2,
                "mqtt.disconnects": 1,
            }
        )
    )
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "vesper_ingest_events_published_late_total 1.0",
        "vesper_ingest_events_published_total 6.0",
        "vesper_ingest_events_republished_total 0.0",
        'vesper_ingest_events_total{type="alert"} 5.0',
        'vesper_ingest_events_total{type="device_offline"} 1.0',
        "vesper_ingest_messages_redelivered_total 2.0",
        'vesper_ingest_messages_total{kind="alerts"} 7.0',
        'vesper_ingest_messages_total{kind="heartbeat"} 0.0',
        'vesper_ingest_messages_total{kind="info"} 0.0',
        "vesper_ingest_mqtt_connects_total 2.0",
        "vesper_ingest_mqtt_disconnects_total 1.0",
        'vesper_ingest_rejected_total{reason="bad_device_id"} 1.0',
        'vesper_ingest_rejected_total{reason="not_json"} 3.0',
    ]
    assert text.count("# TYPE vesper_ingest_rejected_total counter") == 1
    assert "# HELP vesper_ingest_messages_total Messages the ingest received, by topic kind.\n" in text


def test_unknown_counters_still_render() -> None:
    assert samples(render(ingest_metrics({"weird.name-with.dots": 4})))["vesper_ingest_weird_name_with_dots_total"] == 4


def test_worker_metrics_without_a_bridge(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "v.db", 10, 10)
    hub.subscribe()
    text = render(worker_metrics(hub, None))
    assert "# TYPE vesper_web_stream_clients gauge\n" in text
    assert "# TYPE vesper_web_stream_dropped_total counter\n" in text
    got = samples(text)
    assert got["vesper_web_stream_clients"] == 1 and got["vesper_web_bridge_connected"] == 0
    assert got["vesper_web_bridge_reconnects_total"] == 0 and got["vesper_web_stream_dropped_total"] == 0
    assert got["vesper_web_events_delivered_total"] == 0 and got["vesper_web_last_event_id"] == hub.last_id


def test_endpoint_reads_the_ingest_counters(tmp_path: Path) -> None:
    app = make_app(tmp_path, [{"messages.alerts": 10, "rejected.oversized": 2}, {"messages.alerts": 5}])
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    got = samples(response.get_data(as_text=True))
    assert got['vesper_ingest_messages_total{kind="alerts"}'] == 15
    assert got['vesper_ingest_messages_total{kind="info"}'] == 0  # a kind never seen yet
    assert got['vesper_ingest_rejected_total{reason="oversized"}'] == 2
    assert "# TYPE vesper_web_stream_clients gauge\n" in response.get_data(as_text=True)


def test_endpoint_parses_with_families_and_process_metrics(tmp_path: Path) -> None:
    app = make_app(tmp_path, [{"messages.alerts": 3, "rejected.not_json": 1, "events.alert": 2, "mqtt.connects": 1}])
    text = app.test_client().get("/metrics").get_data(as_text=True)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # the parser names counter families without `_total`; their samples keep it
    messages = families["vesper_ingest_messages"]
    assert messages.type == "counter"
    assert {s.labels["kind"]: s.value for s in messages.samples} == {"alerts": 3, "heartbeat": 0, "info": 0}
    assert {(s.name, s.value) for s in messages.samples} >= {("vesper_ingest_messages_total", 3)}
    assert [(s.labels, s.value) for s in families["vesper_ingest_rejected"].samples] == [({"reason": "not_json"}, 1)]
    assert [(s.labels, s.value) for s in families["vesper_ingest_events"].samples] == [({"type": "alert"}, 2)]
    assert families["vesper_ingest_mqtt_connects"].samples[0].value == 1
    assert families["vesper_web_stream_clients"].type == "gauge"
    assert families["vesper_web_bridge_connected"].samples[0].value == 0  # no bridge in tests
    assert "process_cpu_seconds" in families and "process_resident_memory_bytes" in families
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert "python_info" in families


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    one, two = make_app(tmp_path / "a"), make_app(tmp_path / "b", [{"messages.info": 4}])
    assert one.extensions["vesper_metrics"] is not two.extensions["vesper_metrics"]
    info = 'vesper_ingest_messages_total{kind="info"}'
    assert samples(one.test_client().get("/metrics").get_data(as_text=True))[info] == 0
    assert samples(two.test_client().get("/metrics").get_data(as_text=True))[info] == 4
