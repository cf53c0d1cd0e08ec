"""paho-mqtt 2.x client construction shared by both processes."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.config import MqttConfig

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 10


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Disable Nagle: small QoS 1 packets otherwise stall ~40 ms waiting for ACK coalescing."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connect_failed(cfg: MqttConfig) -> Any:
    """Log why a connection attempt failed (paho only logs it at DEBUG); it retries with backoff."""

    def on_connect_fail(client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError`, so the error is the current exception.
        error = sys.exc_info()[1]
        log.error("cannot connect to %s: %s; retrying", describe(cfg), error or "connection failed")

    return on_connect_fail


def make_client(cfg: MqttConfig, client_id: str, *, persistent: bool = False, manual_ack: bool = False) -> mqtt.Client:
    """A callback-API-v2 client with credentials, TLS, backoff and TCP_NODELAY from the config.

    `persistent` asks for an MQTT 3.1.1 session that outlives the connection
    (clean_session=False), so QoS 1 messages are queued by the broker while we are away.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    client.on_socket_open = _nodelay
    client.on_connect_fail = _connect_failed(cfg)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password or None)
    if cfg.tls_ca_file:
        client.tls_set(
            ca_certs=cfg.tls_ca_file,
            certfile=cfg.tls_cert_file or None,
            keyfile=cfg.tls_key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return client


def describe(cfg: MqttConfig) -> str:
    """host:port with the scheme, for start-up log lines."""
    scheme = "mqtts" if cfg.tls_ca_file else "mqtt"
    return f"{scheme}://{cfg.host}:{cfg.port}"
