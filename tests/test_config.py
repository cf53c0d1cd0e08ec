"""Config loading: defaults, partial files, VESPER_CONFIG, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import config
from shared.config import Config, ConfigError
from shared.topics import Topics

ROOT = Path(__file__).resolve().parent.parent


def test_committed_config_holds_every_default():
    assert config.load(ROOT / "config.toml") == Config()


def test_partial_file_takes_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[mqtt]\nport = 1999\n[liveness]\nheartbeat_timeout_s = 5\n")
    cfg = config.load(path)
    assert cfg.mqtt.port == 1999 and cfg.mqtt.host == "127.0.0.1"
    assert cfg.liveness.heartbeat_timeout_s == 5.0 and cfg.database.path == "var/vesper.db"
    assert Topics(cfg.mqtt.topic_prefix).published == "vesper/console/published"


def test_vesper_config_env_var(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[database]\npath = "/tmp/x.db"\n')
    monkeypatch.setenv("VESPER_CONFIG", str(path))
    assert config.load().database.path == "/tmp/x.db"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[mqtt]\nport = "1883"\n', "mqtt.port"),
        ("[mqtt]\nport = 70000\n", "mqtt.port"),
        ("[mqtt]\nport = true\n", "mqtt.port"),
        ("[mqtt]\nhots = 1\n", "mqtt.hots"),
        ("[nope]\n", "nope"),
        ('[mqtt]\ntopic_prefix = "a/b"\n', "mqtt.topic_prefix"),
        ("[liveness]\nheartbeat_timeout_s = 0\n", "liveness.heartbeat_timeout_s"),
        ('[events]\nretention_days = "7"\n', "events.retention_days"),
        ("mqtt = 3\n", "mqtt"),
    ],
)
def test_bad_value_names_its_key(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"config key {key}"):
        config.load(path)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)


def test_ingest_refuses_to_start_naming_the_key(tmp_path):
    from tests.support import run_ingest_to_exit

    path = tmp_path / "c.toml"
    path.write_text("[liveness]\nheartbeat_timeout_s = -1\n")
    out = run_ingest_to_exit(path)
    assert out.returncode == 2 and "liveness.heartbeat_timeout_s" in out.stdout + out.stderr
