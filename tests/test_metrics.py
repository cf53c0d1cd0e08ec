"""/metrics: the pure Prometheus formatter, the counter mapping, and the endpoint on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import config as config_mod
from shared import store
from vesper_web import create_app
from vesper_web.hub import Hub
from vesper_web.metrics import Metric, ingest_metrics, render, worker_metrics


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            Metric("a_total", "counter", "Things.", [({}, 3)]),
            "# HELP a_total Things.\n# TYPE a_total counter\na_total 3\n",
        ),
        (
            Metric("g", "gauge", "Two\nlines \\ here.", [({"k": "x"}, 1), ({"k": "y"}, 2.5)]),
            '# HELP g Two\\nlines \\\\ here.\n# TYPE g gauge\ng{k="x"} 1\ng{k="y"} 2.5\n',
        ),
        (
            Metric("q", "gauge", "Escapes.", [({"a": 'say "hi"\\\n', "b": "é"}, float("inf"))]),
            '# HELP q Escapes.\n# TYPE q gauge\nq{a="say \\"hi\\"\\\\\\n",b="é"} +Inf\n',
        ),
        (Metric("e", "counter", "No samples yet."), "# HELP e No samples yet.\n# TYPE e counter\n"),
        (Metric("b", "gauge", "A bool.", [({}, True)]), "# HELP b A bool.\n# TYPE b gauge\nb 1\n"),
    ],
)
def test_render(metric: Metric, expected: str) -> None:
    assert render([metric]) == expected


@pytest.mark.parametrize(
    "metric",
    [
        Metric("bad-name", "counter", "x", [({}, 1)]),
        Metric("ok", "histogram", "x", [({}, 1)]),
        Metric("ok", "gauge", "x", [({"bad-label": "v"}, 1)]),
    ],
)
def test_render_refuses_what_prometheus_would_not_parse(metric: Metric) -> None:
    with pytest.raises(ValueError):
        render([metric])


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
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert samples == [
        "vesper_ingest_events_published_late_total 1",
        "vesper_ingest_events_published_total 6",
        "vesper_ingest_events_republished_total 0",
        'vesper_ingest_events_total{type="alert"} 5',
        'vesper_ingest_events_total{type="device_offline"} 1',
        "vesper_ingest_messages_redelivered_total 2",
        'vesper_ingest_messages_total{kind="alerts"} 7',
        'vesper_ingest_messages_total{kind="heartbeat"} 0',
        'vesper_ingest_messages_total{kind="info"} 0',
        "vesper_ingest_mqtt_connects_total 2",
        "vesper_ingest_mqtt_disconnects_total 1",
        'vesper_ingest_rejected_total{reason="bad_device_id"} 1',
        'vesper_ingest_rejected_total{reason="not_json"} 3',
    ]
    assert text.count("# TYPE vesper_ingest_rejected_total counter") == 1


def test_unknown_counters_still_render() -> None:
    text = render(ingest_metrics({"weird.name-with.dots": 4}))
    assert "vesper_ingest_weird_name_with_dots_total 4" in text


def test_worker_metrics_without_a_bridge(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "v.db", 10, 10)
    hub.subscribe()
    text = render(worker_metrics(hub, None))
    assert "vesper_web_stream_clients 1\n" in text and "vesper_web_bridge_connected 0\n" in text
    assert "vesper_web_bridge_reconnects_total 0\n" in text and "vesper_web_stream_dropped_total 0\n" in text


def test_endpoint_reads_the_ingest_counters(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    cfg = config_mod.replace(config_mod.Config(), database=config_mod.DatabaseConfig(path=str(path)))
    app = create_app(cfg)
    conn = store.open_store(path)
    with store.write(conn):
        store.add_counters(conn, {"messages.alerts": 10, "rejected.oversized": 2})
    with store.write(conn):
        store.add_counters(conn, {"messages.alerts": 5})
    conn.close()
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    assert 'vesper_ingest_messages_total{kind="alerts"} 15\n' in text
    assert 'vesper_ingest_rejected_total{reason="oversized"} 2\n' in text
    assert "# TYPE vesper_web_stream_clients gauge\n" in text
