"""Both processes' MQTT over TLS with a password, against a real Mosquitto (certificates made here)."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shared import store
from tests.conftest import Broker
from tests.support import ROOT, wait_for
from tests.tls import tls_broker_settings
from vesper_sim import broker as broker_mod


@pytest.fixture
def tls_broker(tmp_path):
    """A Mosquitto that only takes TLS connections with a valid user and password."""
    lines, ca, wrong_ca = tls_broker_settings(tmp_path / "pki")
    b = Broker(tmp_path / "mosquitto-tls", broker_mod.free_port())
    b.proc = broker_mod.start(b.directory, b.port, extra=lines)
    yield b, ca, wrong_ca
    b.stop()


def device_publish(port, ca, topic, payload):
    """A device with its own credentials publishes over TLS."""
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bell-1")
    c.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
    c.username_pw_set("bell-1", "device-pass")
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def test_ingest_connects_with_tls_and_password(tls_broker, make_config, start_ingest, read_db):
    b, ca, _ = tls_broker
    cfg = make_config(mqtt={"port": b.port, "tls_ca_file": str(ca), "username": "vesper", "password": "s3cret-pass"})
    ingest = start_ingest(cfg)
    assert "mqtts://127.0.0.1" in ingest.output()
    device_publish(b.port, ca, "vesper/bell-1/status/alerts", b'{"subsystem": "A", "state": "WARNING"}')
    wait_for(lambda: store.alerts(read_db(), "bell-1"), 10, "the alert over TLS")


def test_wrong_ca_is_refused_with_a_clear_line_and_retried(tls_broker, make_config, start_ingest):
    b, _, wrong_ca = tls_broker
    cfg = make_config(mqtt={"port": b.port, "tls_ca_file": str(wrong_ca), "username": "vesper", "password": "x"})
    ingest = start_ingest(cfg, wait_connected=False)
    ingest.wait_output("certificate verify failed", count=2)  # refused, then refused again on retry
    assert "cannot connect to mqtts://127.0.0.1" in ingest.output()
    assert ingest.proc.poll() is None and "connected to" not in ingest.output()


def test_wrong_password_is_refused_with_a_clear_line_and_retried(tls_broker, make_config, start_ingest):
    b, ca, _ = tls_broker
    cfg = make_config(mqtt={"port": b.port, "tls_ca_file": str(ca), "username": "vesper", "password": "wrong"})
    ingest = start_ingest(cfg, wait_connected=False)
    ingest.wait_output("refused the connection", count=2)
    assert "Not authorized" in ingest.output() or "Bad user name or password" in ingest.output()
    assert ingest.proc.poll() is None


def test_production_acl_lets_a_device_write_only_its_own_topics(tmp_path, make_config, start_ingest, read_db):
    lines, ca, _ = tls_broker_settings(tmp_path / "pki")
    acl = (ROOT / "deploy" / "vesper.acl").read_text()
    (tmp_path / "vesper.acl").write_text(acl)
    b = Broker(tmp_path / "mosquitto-acl", broker_mod.free_port())
    b.proc = broker_mod.start(b.directory, b.port, extra=lines + f"acl_file {tmp_path / 'vesper.acl'}\n")
    try:
        cfg = make_config(
            mqtt={"port": b.port, "tls_ca_file": str(ca), "username": "vesper", "password": "s3cret-pass"}
        )
        start_ingest(cfg)
        # bell-1 forges an alert for bell-2 (dropped by the broker), then reports its own.
        device_publish(b.port, ca, "vesper/bell-2/status/alerts", b'{"subsystem": "A", "state": "FAILED"}')
        device_publish(b.port, ca, "vesper/bell-1/status/alerts", b'{"subsystem": "A", "state": "WARNING"}')
        wait_for(lambda: store.alerts(read_db(), "bell-1"), 10, "bell-1's own alert")
        assert store.device(read_db(), "bell-2") is None
    finally:
        b.stop()
