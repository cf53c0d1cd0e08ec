"""Typed, frozen settings loaded once from TOML (SPEC §6)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PATH = "config.toml"
ENV_VAR = "VESPER_CONFIG"


class ConfigError(ValueError):
    """A setting is wrong; the message names its key."""


@dataclass(frozen=True)
class MqttConfig:
    """Broker connection shared by both processes."""

    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "vesper"
    client_id: str = "vesper-ingest"
    username: str = ""
    password: str = ""
    keepalive_s: int = 30
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the SQLite file lives."""

    path: str = "var/vesper.db"


@dataclass(frozen=True)
class LivenessConfig:
    """When a silent device is declared offline."""

    heartbeat_timeout_s: float = 90.0
    sweep_interval_s: float = 1.0


@dataclass(frozen=True)
class EventsConfig:
    """How long recent events are kept."""

    retention_days: float = 7.0


@dataclass(frozen=True)
class WebConfig:
    """The web process."""

    bind: str = "127.0.0.1:8000"
    workers: int = 1
    stream_queue_size: int = 1000
    keepalive_s: float = 15.0
    max_streams: int = 900


@dataclass(frozen=True)
class IngestConfig:
    """The ingest process."""

    summary_interval_s: float = 60.0
    max_batch: int = 1000


@dataclass(frozen=True)
class Config:
    """Every setting of Vesper Console."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)

    @property
    def published_topic(self) -> str:
        """Topic the ingest republishes classified events on."""
        return f"{self.mqtt.topic_prefix}/console/published"


def _coerce(key: str, kind: type, value: Any) -> Any:
    """Check one value against its declared type; ints are accepted for floats."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"config key {key}: expected int, got bool")
    if not isinstance(value, kind):
        raise ConfigError(f"config key {key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _section(name: str, cls: type, raw: Any) -> Any:
    """Build one frozen section from its TOML table, rejecting unknown keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config key {name}: expected a table")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"config key {name}.{key}: unknown key")
        kind = {"str": str, "int": int, "float": float}[str(known[key].type)]
        values[key] = _coerce(f"{name}.{key}", kind, value)
    return cls(**values)


def _validate(cfg: Config) -> None:
    """Range checks that types alone do not catch."""
    checks = [
        ("mqtt.port", 0 < cfg.mqtt.port < 65536),
        ("mqtt.topic_prefix", bool(cfg.mqtt.topic_prefix) and not any(c in cfg.mqtt.topic_prefix for c in "+#/\0")),
        ("mqtt.client_id", 0 < len(cfg.mqtt.client_id) <= 23 * 4),
        ("liveness.heartbeat_timeout_s", cfg.liveness.heartbeat_timeout_s > 0),
        ("liveness.sweep_interval_s", cfg.liveness.sweep_interval_s > 0),
        ("events.retention_days", cfg.events.retention_days > 0),
        ("web.bind", ":" in cfg.web.bind),
        ("web.workers", cfg.web.workers >= 1),
        ("web.stream_queue_size", cfg.web.stream_queue_size >= 1),
        ("web.max_streams", cfg.web.max_streams >= 1),
        ("ingest.max_batch", cfg.ingest.max_batch >= 1),
        ("database.path", bool(cfg.database.path)),
    ]
    for key, ok in checks:
        if not ok:
            raise ConfigError(f"config key {key}: value out of range")


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a Config from a parsed TOML document; missing keys take defaults."""
    sections = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]
    values = {}
    for name, table in raw.items():
        if name not in sections:
            raise ConfigError(f"config key {name}: unknown section")
        values[name] = _section(name, type(sections[name]()), table)
    cfg = Config(**values)
    _validate(cfg)
    return cfg


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config from `path`, else $VESPER_CONFIG, else ./config.toml."""
    path = path or os.environ.get(ENV_VAR) or DEFAULT_PATH
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from exc
    return from_dict(raw)


def replace(cfg: Config, **sections: Any) -> Config:
    """Return a copy of cfg with whole sections swapped (for tests and tools)."""
    return dataclasses.replace(cfg, **sections)
