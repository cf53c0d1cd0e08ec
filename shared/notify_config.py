"""The [notify] settings (docs/notifications.md): Apprise channels and the rules that send to them."""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.settings import Convert, array, fail, table
from shared.vocabulary import EVENT_TYPES

NOTIFY_TYPES = tuple(EVENT_TYPES)  # a rule may name any event type (shared/vocabulary.py)
SEVERITIES = ("info", "warning", "critical")  # least severe first: a rule's min_severity and everything after it
CHANNEL_NAME = re.compile(r"[a-z0-9_-]{1,32}")
TAG = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,31}")  # a device tag (§7)
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31})://")


@dataclass(frozen=True)
class Channel:
    """Where messages go: a name for rules and the API, and an Apprise URL (may hold secrets: never log it)."""

    name: str
    url: str


@dataclass(frozen=True)
class Rule:
    """Which events open a notification to one channel, and how they are grouped and repeated."""

    channel: str
    types: tuple[str, ...] = ("alert", "device_offline")
    min_severity: str = "critical"
    tags: tuple[str, ...] = ()
    resolved: bool = True
    group_wait_s: float = 30.0
    repeat_after_s: float = 0.0
    escalate_after_s: float = 0.0  # a problem told and neither acknowledged nor resolved this long: tell escalate_to
    escalate_to: str = ""  # a channel (§14); both or neither


@dataclass(frozen=True)
class NotifyConfig:
    """Every notification setting; no channels means nothing is sent."""

    public_url: str = ""
    give_up_after_s: float = 86400.0
    send_timeout_s: float = 30.0  # a receiver answering within this is one delivery, never several (§16)
    watchdog_url: str = ""  # a push check (Healthchecks, Uptime Kuma) the leading ingest GETs while it sees (§11)
    watchdog_interval_s: float = 60.0
    channels: tuple[Channel, ...] = ()
    rules: tuple[Rule, ...] = ()

    def channel(self, name: str) -> Channel:
        """The channel called `name`; KeyError if there is none."""
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)


def _str(key: str, value: Any) -> str:
    """A string."""
    if not isinstance(value, str):
        fail(key, f"expected str, got {type(value).__name__}")
    return value


def _float(key: str, value: Any) -> float:
    """A finite number; ints are accepted, bools are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(key, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        fail(key, "expected a finite number")
    return float(value)


def _bool(key: str, value: Any) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        fail(key, f"expected true or false, got {type(value).__name__}")
    return value


def _strings(key: str, value: Any) -> tuple[str, ...]:
    """A list of strings, as a tuple."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        fail(key, "expected a list of strings")
    return tuple(value)


CONVERT: dict[str, Convert] = {  # [notify]'s converters: stricter than the top-level sections' (finite numbers)
    "str": _str,
    "float": _float,
    "bool": _bool,
    "tuple[str, ...]": _strings,
    "tuple[Channel, ...]": lambda key, value: array(key, value, Channel, CONVERT),
    "tuple[Rule, ...]": lambda key, value: array(key, value, Rule, CONVERT),
}


def _http_url(url: str) -> bool:
    """True for an http:// or https:// address with a host."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [IPv6 literal
        return False


def _check_top(cfg: NotifyConfig) -> None:
    """public_url, give_up_after_s, send_timeout_s and the watchdog."""
    if cfg.public_url and not _http_url(cfg.public_url):
        fail("notify.public_url", "expected empty or an http:// or https:// address with a host")
    if cfg.give_up_after_s <= 0:
        fail("notify.give_up_after_s", "must be greater than 0")
    if not 1 <= cfg.send_timeout_s <= 600:
        fail("notify.send_timeout_s", "expected 1 to 600 seconds")
    if cfg.watchdog_url and not _http_url(cfg.watchdog_url):
        fail("notify.watchdog_url", "expected empty or an http:// or https:// address with a host")
    if cfg.watchdog_interval_s < 1:
        fail("notify.watchdog_interval_s", "must be 1 or more")


def _check_channels(channels: tuple[Channel, ...]) -> None:
    """Names are well-formed and unique; every channel has a URL (Apprise checks it later)."""
    seen: set[str] = set()
    for i, channel in enumerate(channels):
        if not CHANNEL_NAME.fullmatch(channel.name):
            fail(f"notify.channels[{i}].name", "expected [a-z0-9_-]{1,32}")
        if channel.name in seen:
            fail(f"notify.channels[{i}].name", f'another channel is already named "{channel.name}"')
        seen.add(channel.name)
        if not channel.url.strip():
            fail(f"notify.channels[{i}].url", "expected an Apprise URL, got an empty string")


def _check_rule(key: str, rule: Rule, names: set[str]) -> None:
    """One rule: its channel exists, its severity is known, its times are not negative."""
    if rule.channel not in names:
        fail(f"{key}.channel", f'no channel named "{rule.channel[:32]}"')
    if rule.min_severity not in SEVERITIES:
        fail(f"{key}.min_severity", f"expected one of {' | '.join(SEVERITIES)}")
    for name in ("group_wait_s", "repeat_after_s", "escalate_after_s"):
        if getattr(rule, name) < 0:
            fail(f"{key}.{name}", "must be 0 or more")
    if bool(rule.escalate_after_s) != bool(rule.escalate_to):
        fail(f"{key}.escalate_to", "escalate_after_s and escalate_to go together (both or neither)")
    if rule.escalate_to and rule.escalate_to not in names:
        fail(f"{key}.escalate_to", f'no channel named "{rule.escalate_to[:32]}"')
    _check_rule_lists(key, rule)


def _check_rule_lists(key: str, rule: Rule) -> None:
    """One rule's types (at least one, each known) and tags (each a valid device tag)."""
    if not rule.types:
        fail(f"{key}.types", "expected at least one event type")
    for j, kind in enumerate(rule.types):
        if kind not in NOTIFY_TYPES:
            fail(f"{key}.types[{j}]", f'unknown event type "{kind[:32]}" (one of {", ".join(NOTIFY_TYPES)})')
    for j, tag in enumerate(rule.tags):
        if not TAG.fullmatch(tag):
            fail(f"{key}.tags[{j}]", "expected a device tag: [a-z0-9][a-z0-9_.:-]{0,31}")


@contextmanager
def _apprise_quiet() -> Iterator[Any]:
    """Import Apprise with its logger muted: its own errors would echo the URL, secrets and all."""
    with warnings.catch_warnings():  # its e-mail plugin imports the stdlib's deprecated imghdr as it loads
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        import apprise  # imported here: a process without channels never pays for it

        logger = logging.getLogger(apprise.LOGGER_NAME)
        was = logger.disabled
        logger.disabled = True
        try:
            yield apprise
        finally:
            logger.disabled = was


def _check_urls(channels: tuple[Channel, ...]) -> None:
    """Every URL loads in Apprise as exactly one service; errors name the key and scheme, never the URL."""
    if not channels:
        return
    with _apprise_quiet() as apprise:
        for i, channel in enumerate(channels):
            key = f"notify.channels[{i}].url"
            match = SCHEME.match(channel.url.strip())
            if not match:
                fail(key, "not an Apprise URL (expected scheme://...)")
            scheme = match.group(1).lower()
            if scheme not in apprise.NotificationManager():
                fail(key, f'unknown Apprise scheme "{scheme}://"')
            target = apprise.Apprise()
            if not target.add(channel.url):
                fail(key, f'Apprise cannot use this "{scheme}://" URL: a part is missing or malformed')
            if len(target) != 1:
                fail(key, "expected one Apprise URL (use one channel per service)")


def parse_notify(raw: Any) -> NotifyConfig:
    """Build the [notify] section from its TOML table; a wrong value raises ConfigError naming the key."""
    cfg: NotifyConfig = table("notify", raw, NotifyConfig, CONVERT)
    _check_top(cfg)
    _check_channels(cfg.channels)
    names = {channel.name for channel in cfg.channels}
    for i, rule in enumerate(cfg.rules):
        _check_rule(f"notify.rules[{i}]", rule, names)
    _check_urls(cfg.channels)
    return cfg
