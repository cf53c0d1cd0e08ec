"""Typed, frozen settings loaded once from TOML (README.md#configuring-it)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import zoneinfo
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from shared import accounts
from shared.accounts import Account
from shared.notify_config import NotifyConfig, parse_notify
from shared.settings import ConfigError, fail, table

DEFAULT_PATH = "config.toml"
ENV_VAR = "VESPER_CONFIG"


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
    """Where the database is: a SQLite file (the default), or a PostgreSQL server's URL."""

    path: str = "var/vesper.db"
    url: str = ""  # postgresql://user@host:port/db: used instead of path when set
    leader_timeout_s: float = 3.0  # PostgreSQL: a leader idle this long is cut off and a standby leads

    @property
    def target(self) -> str:
        """What the store opens: the URL if one is set, else the file."""
        return self.url or self.path


@dataclass(frozen=True)
class LivenessConfig:
    """When a silent device is declared offline."""

    heartbeat_timeout_s: float = 90.0
    sweep_interval_s: float = 1.0
    interrupted_after_s: float = 30.0  # without the broker this long: one monitoring_interrupted event (§11)


@dataclass(frozen=True)
class AlertsConfig:
    """Bounds (docs/events.md#rejections), flapping and flooding (docs/events.md#flapping, #flooding) of alerts."""

    max_subsystems_per_device: int = 64
    flap_transitions: int = 6  # 0: flapping is not detected
    flap_window_s: float = 600.0
    max_events_per_device_per_minute: int = 120  # past it: one device_flooding event, state still kept (§16)


@dataclass(frozen=True)
class DevicesConfig:
    """The fleet's ids."""

    forget_unregistered_after_days: float = 30.0  # never registered and unheard this long: forgotten (§16)
    firmware_key: str = "fw"  # the heartbeat's top-level key that holds the firmware version (§12)


@dataclass(frozen=True)
class EventsConfig:
    """How long recent events are kept."""

    retention_days: float = 7.0


@dataclass(frozen=True)
class HistoryConfig:
    """Episodes and availability (SPEC §13): how long they are kept, and the day boundaries' time zone."""

    retention_days: float = 400.0  # 0: no history is kept (the ingest writes no episodes)
    timezone: str = "UTC"  # an IANA name: a report's days start at its midnight


@dataclass(frozen=True)
class WebConfig:
    """The web process."""

    bind: str = "127.0.0.1:8000"
    workers: int = 1
    stream_queue_size: int = 1000
    keepalive_s: float = 15.0
    max_streams: int = 900
    health_check_interval_s: float = 10.0
    command_wait_s: float = 5.0  # how long an acknowledgement waits for the ingest to carry it out
    stale_after_s: float = 10.0  # the ingest silent (or this worker's bridge down) this long: the pipeline is not ok
    proxy_hops: int = 0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    bulk_max: int = 10_000  # most devices one bulk action may touch (§12)
    bulk_health_checks_per_s: float = 50.0  # a bulk health check's pace, so the broker and devices are not flooded


@dataclass(frozen=True)
class AuthConfig:
    """Who may use the web process: operators' password hashes and scripts' token hashes."""

    users: tuple[Account, ...] = ()  # shared/accounts.py: name, role, hash
    tokens: tuple[Account, ...] = ()  # and the sites a token is limited to
    secret_key: str = ""
    session_hours: float = 12.0
    login_backoff_s: float = 1.0
    login_backoff_max_s: float = 60.0
    metrics_public: bool = False
    audit_retention_days: int = 400  # how long the audit log keeps a request (§14)

    @property
    def enabled(self) -> bool:
        """True once any operator or token is configured: from then on every request needs one."""
        return bool(self.users or self.tokens)


@dataclass(frozen=True)
class IngestConfig:
    """The ingest process."""

    summary_interval_s: float = 60.0  # how often the ingest logs its counters
    max_batch: int = 1000  # most messages committed in one transaction


@dataclass(frozen=True)
class Config:
    """Every setting of Vesper Console."""

    mqtt: MqttConfig = field(default_factory=MqttConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)


def _coerce(kind: type, key: str, value: Any) -> Any:
    """Check one value against its declared type; ints are accepted for floats, lists become tuples."""
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            fail(key, "expected a list of strings")
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        fail(key, "expected int, got bool")
    if not isinstance(value, kind):
        fail(key, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


TYPES = {"str": str, "int": int, "float": float, "bool": bool, "tuple[str, ...]": tuple}
CONVERT = {name: partial(_coerce, kind) for name, kind in TYPES.items()}  # the top-level sections' converters
CONVERT["tuple[Account, ...]"] = accounts.parse


def _known_zone(name: str) -> bool:
    """True for an IANA time zone name this machine (or the tzdata package) knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _validate(cfg: Config) -> None:
    """Range checks that types alone do not catch."""
    checks = [
        ("mqtt.port", 0 < cfg.mqtt.port < 65536),
        ("mqtt.topic_prefix", bool(cfg.mqtt.topic_prefix) and not any(c in cfg.mqtt.topic_prefix for c in "+#/\0")),
        ("mqtt.client_id", 0 < len(cfg.mqtt.client_id) <= 23 * 4),
        ("liveness.heartbeat_timeout_s", cfg.liveness.heartbeat_timeout_s > 0),
        ("liveness.sweep_interval_s", cfg.liveness.sweep_interval_s > 0),
        ("liveness.interrupted_after_s", cfg.liveness.interrupted_after_s > 0),
        ("events.retention_days", cfg.events.retention_days > 0),
        ("history.retention_days", cfg.history.retention_days >= 0),
        ("history.timezone", _known_zone(cfg.history.timezone)),
        ("alerts.max_subsystems_per_device", 1 <= cfg.alerts.max_subsystems_per_device <= 10_000),
        ("alerts.flap_transitions", cfg.alerts.flap_transitions == 0 or cfg.alerts.flap_transitions >= 2),
        ("alerts.flap_window_s", cfg.alerts.flap_window_s > 0),
        ("alerts.max_events_per_device_per_minute", cfg.alerts.max_events_per_device_per_minute >= 1),
        ("devices.forget_unregistered_after_days", cfg.devices.forget_unregistered_after_days > 0),
        ("devices.firmware_key", 0 < len(cfg.devices.firmware_key) <= 64),
        ("web.bind", ":" in cfg.web.bind),
        ("web.workers", cfg.web.workers >= 1),
        ("web.stream_queue_size", cfg.web.stream_queue_size >= 1),
        ("web.max_streams", cfg.web.max_streams >= 1),
        ("web.health_check_interval_s", cfg.web.health_check_interval_s >= 0),
        ("web.command_wait_s", 0 <= cfg.web.command_wait_s <= 60),
        ("web.stale_after_s", cfg.web.stale_after_s > 0),
        ("web.proxy_hops", 0 <= cfg.web.proxy_hops <= 5),
        ("web.bulk_max", 1 <= cfg.web.bulk_max <= 100_000),
        ("web.bulk_health_checks_per_s", cfg.web.bulk_health_checks_per_s > 0),
        ("web.tls_key_file", bool(cfg.web.tls_key_file) == bool(cfg.web.tls_cert_file)),
        ("auth.secret_key", cfg.auth.secret_key == "" or len(cfg.auth.secret_key) >= 32),
        ("auth.session_hours", cfg.auth.session_hours > 0),
        ("auth.login_backoff_s", cfg.auth.login_backoff_s >= 0),
        ("auth.login_backoff_max_s", cfg.auth.login_backoff_max_s >= cfg.auth.login_backoff_s),
        ("auth.audit_retention_days", cfg.auth.audit_retention_days > 0),
        ("ingest.max_batch", cfg.ingest.max_batch >= 1),
        ("database.path", bool(cfg.database.path)),
        ("database.leader_timeout_s", 1 <= cfg.database.leader_timeout_s <= 60),
        ("database.url", cfg.database.url == "" or cfg.database.url.startswith(("postgresql://", "postgres://"))),
    ]
    for key, ok in checks:
        if not ok:
            raise ConfigError(f"config key {key}: value out of range")


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a Config from a parsed TOML document; missing keys take defaults."""
    sections = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]
    values = {}
    for name, raw_table in raw.items():
        if name not in sections:
            raise ConfigError(f"config key {name}: unknown section")
        if name == "notify":  # arrays of tables ([[notify.channels]]): a parser of its own
            values[name] = parse_notify(raw_table)
        else:
            values[name] = table(name, raw_table, type(sections[name]()), CONVERT)
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
