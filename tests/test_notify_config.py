"""[notify] (docs/notifications.md): good files load, a wrong value names its key, a URL's secret is never echoed."""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shared import config
from shared.config import ConfigError
from shared.notify_config import NOTIFY_TYPES, SEVERITIES, Channel, NotifyConfig, Rule, parse_notify

ROOT = Path(__file__).resolve().parent.parent
HOOK = '[[notify.channels]]\nname = "ops"\nurl = "json://hooks.example.net/vesper"\n'
RULE = '[[notify.rules]]\nchannel = "ops"\n'
SECRET = "s3cret"
SECRET_URL = f"json://user:{SECRET}@hooks.example.net/x"


def load_text(tmp_path: Path, text: str) -> config.Config:
    """Write a config file holding `text` and load it."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config.load(path)


def test_defaults_and_no_section(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "[notify]\n")
    assert cfg.notify == NotifyConfig() == load_text(tmp_path, "").notify
    assert cfg.notify.give_up_after_s == 86400.0 and cfg.notify.channels == () and cfg.notify.rules == ()
    assert Rule("ops") == Rule("ops", ("alert", "device_offline"), "critical", (), True, 30.0, 0.0)
    assert SEVERITIES == ("info", "warning", "critical") and {"alert", "alert_acknowledged"} <= set(NOTIFY_TYPES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"[notify]\n{HOOK}{RULE}", NotifyConfig(channels=(Channel("ops", "json://hooks.example.net/vesper"),))),
        (
            '[notify]\npublic_url = "https://vesper.example.net/"\ngive_up_after_s = 60\n',
            NotifyConfig(public_url="https://vesper.example.net/", give_up_after_s=60.0),
        ),
        ('[notify]\npublic_url = "http://10.0.0.5:8000"\n', NotifyConfig(public_url="http://10.0.0.5:8000")),
    ],
)
def test_good_sections(tmp_path: Path, text: str, expected: NotifyConfig) -> None:
    got = load_text(tmp_path, text).notify
    assert got.public_url == expected.public_url and got.give_up_after_s == expected.give_up_after_s
    assert got.channels == expected.channels


def test_full_rule_and_several_channels(tmp_path: Path) -> None:
    text = (
        f"{HOOK}"
        '[[notify.channels]]\nname = "mail-2"\n'
        'url = "mailto://127.0.0.1:2525?from=vesper@example.com&to=ops@example.com&mode=insecure"\n'
        f"{RULE}"
        '[[notify.rules]]\nchannel = "mail-2"\ntypes = ["alert", "alert_cleared", "playback_started", "info"]\n'
        'min_severity = "warning"\ntags = ["lobby", "site:north"]\nresolved = false\n'
        "group_wait_s = 0\nrepeat_after_s = 3600\n"
    )
    notify = load_text(tmp_path, text).notify
    assert [c.name for c in notify.channels] == ["ops", "mail-2"]
    assert notify.rules[0] == Rule("ops")
    types = ("alert", "alert_cleared", "playback_started", "info")
    assert notify.rules[1] == Rule("mail-2", types, "warning", ("lobby", "site:north"), False, 0.0, 3600.0)
    assert isinstance(notify.rules[1].group_wait_s, float) and notify.channel("mail-2") is notify.channels[1]
    with pytest.raises(KeyError):
        notify.channel("pager")


def test_from_dict_accepts_ints_for_floats() -> None:
    cfg = config.from_dict({"notify": {"give_up_after_s": 5, "rules": []}})
    assert cfg.notify.give_up_after_s == 5.0 and isinstance(cfg.notify.give_up_after_s, float)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("notify = 3\n", "notify", "expected a table"),
        ('[notify]\npublik_url = ""\n', "notify.publik_url", "unknown key"),
        ('[notify]\npublic_url = "vesper.example.net"\n', "notify.public_url", "http"),
        ('[notify]\npublic_url = "ftp://vesper.example.net"\n', "notify.public_url", "http"),
        ('[notify]\npublic_url = "https://"\n', "notify.public_url", "host"),
        ('[notify]\npublic_url = "http://[::1"\n', "notify.public_url", "host"),
        ("[notify]\npublic_url = 1\n", "notify.public_url", "expected str"),
        ("[notify]\ngive_up_after_s = 0\n", "notify.give_up_after_s", "greater than 0"),
        ("[notify]\ngive_up_after_s = -1.5\n", "notify.give_up_after_s", "greater than 0"),
        ('[notify]\ngive_up_after_s = "1d"\n', "notify.give_up_after_s", "expected a number"),
        ("[notify]\ngive_up_after_s = true\n", "notify.give_up_after_s", "expected a number, got bool"),
        ("[notify]\ngive_up_after_s = inf\n", "notify.give_up_after_s", "finite"),
        ("[notify]\ngive_up_after_s = nan\n", "notify.give_up_after_s", "finite"),
        ('[notify]\nchannels = "ops"\n', "notify.channels", "array of tables"),
        ("[notify]\nchannels = [1]\n", r"notify.channels\[0\]", "expected a table"),
        ('[[notify.channels]]\nname = "ops"\n', r"notify.channels\[0\].url", "missing"),
        ('[[notify.channels]]\nurl = "json://h/x"\n', r"notify.channels\[0\].name", "missing"),
        (HOOK + '[[notify.channels]]\nname = "Ops!"\nurl = "json://h/x"\n', r"notify.channels\[1\].name", "a-z0-9"),
        ('[[notify.channels]]\nname = ""\nurl = "json://h/x"\n', r"notify.channels\[0\].name", "a-z0-9"),
        (f'[[notify.channels]]\nname = "{"x" * 33}"\nurl = "json://h/x"\n', r"notify.channels\[0\].name", "1,32"),
        (HOOK + HOOK, r"notify.channels\[1\].name", 'already named "ops"'),
        ('[[notify.channels]]\nname = "ops"\nurl = ""\n', r"notify.channels\[0\].url", "empty"),
        ('[[notify.channels]]\nname = "ops"\nurl = 7\n', r"notify.channels\[0\].url", "expected str"),
        (HOOK + '[[notify.channels]]\nname = "b"\nurl = "json://"\n', r"notify.channels\[1\].url", '"json://"'),
        (HOOK + 'color = "red"\n', r"notify.channels\[0\].color", "unknown key"),
        ('[notify]\nrules = {channel = "ops"}\n', "notify.rules", "array of tables"),
        (RULE, r"notify.rules\[0\].channel", 'no channel named "ops"'),
        (HOOK + '[[notify.rules]]\nchannel = "pager"\n', r"notify.rules\[0\].channel", 'no channel named "pager"'),
        (HOOK + "[[notify.rules]]\ntypes = []\n", r"notify.rules\[0\].channel", "missing"),
        (HOOK + RULE + RULE + "group_wiat_s = 5\n", r"notify.rules\[1\].group_wiat_s", "unknown key"),
        (HOOK + RULE + 'types = ["alert", "alrt"]\n', r"notify.rules\[0\].types\[1\]", 'unknown event type "alrt"'),
        (HOOK + RULE + "types = []\n", r"notify.rules\[0\].types", "at least one"),
        (HOOK + RULE + 'types = "alert"\n', r"notify.rules\[0\].types", "list of strings"),
        (HOOK + RULE + "types = [1]\n", r"notify.rules\[0\].types", "list of strings"),
        (HOOK + RULE + 'min_severity = "fatal"\n', r"notify.rules\[0\].min_severity", "info | warning | critical"),
        (HOOK + RULE + 'min_severity = "CRITICAL"\n', r"notify.rules\[0\].min_severity", "info"),
        (HOOK + RULE + 'tags = ["Lobby"]\n', r"notify.rules\[0\].tags\[0\]", "device tag"),
        (HOOK + RULE + 'tags = ["ok", ""]\n', r"notify.rules\[0\].tags\[1\]", "device tag"),
        (HOOK + RULE + "resolved = 1\n", r"notify.rules\[0\].resolved", "true or false"),
        (HOOK + RULE + 'resolved = "yes"\n', r"notify.rules\[0\].resolved", "true or false"),
        (HOOK + RULE + "group_wait_s = -1\n", r"notify.rules\[0\].group_wait_s", "0 or more"),
        (HOOK + RULE + "group_wait_s = false\n", r"notify.rules\[0\].group_wait_s", "got bool"),
        (HOOK + RULE + "repeat_after_s = -0.5\n", r"notify.rules\[0\].repeat_after_s", "0 or more"),
        (HOOK + RULE + 'repeat_after_s = "1h"\n', r"notify.rules\[0\].repeat_after_s", "expected a number"),
    ],
)
def test_bad_value_names_its_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"^config key {key}: .*{problem}"):
        load_text(tmp_path, text)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"nosuch://user:{SECRET}@x", 'unknown Apprise scheme "nosuch://"'),
        (SECRET, "not an Apprise URL"),
        (f"{SECRET}@hooks.example.net/x", "not an Apprise URL"),
        (f"slack://{SECRET}", '"slack://" URL'),
        (f"tgram://{SECRET}", '"tgram://" URL'),
        (f"{SECRET_URL} json://other.example.net/y", "expected one Apprise URL"),
        (f"{SECRET_URL}, nosuch://{SECRET}", "Apprise cannot use"),
    ],
)
def test_unusable_url_names_key_and_scheme_never_the_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str, problem: str
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, f'{HOOK}[[notify.channels]]\nname = "b"\nurl = "{url}"\n')
    message = str(caught.value)
    assert message.startswith("config key notify.channels[1].url: ") and problem in message
    assert SECRET not in message and SECRET not in caplog.text  # Apprise's own error log would print the URL
    assert not logging.getLogger("apprise").disabled


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (RULE + 'channel_ = "x"\n', r"notify.rules\[0\].channel_"),
        ('[[notify.rules]]\nchannel = "pager"\n', r"notify.rules\[0\].channel"),
        ("[notify]\ngive_up_after_s = 0\n", "notify.give_up_after_s"),
        ("[mqtt]\nport = 0\n", "mqtt.port"),
    ],
)
def test_good_secret_url_is_not_echoed_by_errors_elsewhere(tmp_path: Path, extra: str, key: str) -> None:
    text = f'{extra}[[notify.channels]]\nname = "ops"\nurl = "{SECRET_URL}"\n'
    with pytest.raises(ConfigError, match=f"^config key {key}: ") as caught:
        load_text(tmp_path, text)
    assert SECRET not in str(caught.value)


def test_parse_notify_directly() -> None:
    assert parse_notify({}) == NotifyConfig()
    with pytest.raises(ConfigError, match=r"^config key notify\.rules\[0\]: expected a table"):
        parse_notify({"rules": ["ops"]})


def test_committed_example_loads_with_rule_defaults() -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    head, _, example = text.partition("# [[notify.channels]]")
    lines = [line.removeprefix("# ") for line in ("# [[notify.channels]]" + example).splitlines()]
    notify = config.from_dict(tomllib.loads(head + "\n".join(lines))).notify
    assert notify.channels == (Channel("ops", "json://hooks.example.net/vesper"),) and notify.rules == (Rule("ops"),)


def test_no_channels_never_imports_apprise_and_no_import_cycle() -> None:
    code = (
        "import sys; import shared.notify_config; from shared.config import load; load('config.toml'); "
        "print('apprise' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
