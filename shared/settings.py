"""TOML tables into frozen dataclasses: ConfigError and the one walker that shared/config.py and notify_config.py use.

Each caller brings its own converters, by declared type name ("str", "float", "tuple[str, ...]", ...): the top-level
sections and [notify] word their type errors differently, and the walker checks only what they share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Any, NoReturn

Convert = Callable[[str, Any], Any]  # (the key, for errors; the TOML value) -> the checked value


class ConfigError(ValueError):
    """A setting is wrong; the message names its key."""


def fail(key: str, problem: str) -> NoReturn:
    """Stop with a ConfigError naming the key."""
    raise ConfigError(f"config key {key}: {problem}")


def table(key: str, raw: Any, cls: type, convert: Mapping[str, Convert]) -> Any:
    """Build one frozen dataclass from its TOML table: known keys only, each converted, required ones present."""
    if not isinstance(raw, dict):
        fail(key, "expected a table")
    kinds = {f.name: str(f.type) for f in fields(cls)}
    values = {}
    for name, value in raw.items():
        if name not in kinds:
            fail(f"{key}.{name}", "unknown key")
        values[name] = convert[kinds[name]](f"{key}.{name}", value)
    for f in fields(cls):
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING:
            fail(f"{key}.{f.name}", "missing (this key is required)")
    return cls(**values)


def array(key: str, value: Any, cls: type, convert: Mapping[str, Convert]) -> tuple[Any, ...]:
    """An array of tables ([[key]]), each built into cls."""
    if not isinstance(value, list):
        fail(key, f"expected an array of tables ([[{key}]])")
    return tuple(table(f"{key}[{i}]", item, cls, convert) for i, item in enumerate(value))
