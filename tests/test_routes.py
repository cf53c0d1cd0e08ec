"""No route a device id can shadow (§12), checked on every path the app's URL map can build.

A device id is 1-64 characters of A-Za-z0-9_.:-, so "import", "export" or "docs" are ids like any
other. Each rule's arguments are filled with every static segment of every rule (and plain ids), and
each such path is matched with every method: it must name one device (or none) whatever the method,
and a device's own rule must answer for each id, never another rule in its place.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import MapAdapter, RequestRedirect, Rule

from shared.topics import is_valid_device_id

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ARG = re.compile(r"<(?:([a-z]+)(?:\(([^)]*)\))?:)?([a-z_]+)>")
PLAIN = ["bell-1", "a.b", "x:y", "_"]


def segments(app: Flask) -> list[str]:
    """Every static segment of every rule (the words a device id could collide with), and a few plain ids."""
    words = {part for rule in app.url_map.iter_rules() for part in ARG.sub("", rule.rule).split("/") if part}
    return sorted(words) + PLAIN


def values(converter: str | None, options: str | None, samples: list[str]) -> list[str]:
    """What a rule's argument is filled with: the samples, "1" for an int, the names an any() allows."""
    if converter == "int":
        return ["1"]
    if converter == "any":
        return re.findall(r"'([^']*)'", options or "")
    return samples + (["a/b"] if converter == "path" else [])


def paths(rule: Rule, samples: list[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Each path the rule builds from the samples, with the arguments it was built from."""
    args = ARG.findall(rule.rule)
    for chosen in itertools.product(*(values(conv, opts, samples) for conv, opts, _ in args)):
        filled = dict(zip((name for _, _, name in args), chosen, strict=True))
        yield fill(rule.rule, filled), filled


def fill(rule: str, args: dict[str, str]) -> str:
    """The rule's path with its arguments put in."""
    return ARG.sub(lambda m: args[m.group(3)], rule)


def meaning(adapter: MapAdapter, path: str, method: str) -> tuple[str, str | None] | None:
    """(endpoint, device id) that answers path and method, or None when no rule does."""
    try:
        rule, args = adapter.match(path, method, return_rule=True)
    except (NotFound, MethodNotAllowed, RequestRedirect):
        return None
    return rule.endpoint, args.get("device_id")


def overlaps(app: Flask) -> list[str]:
    """Every path that names a device by one method and something else (or another device) by another."""
    adapter, samples, found = app.url_map.bind("localhost"), segments(app), []
    for rule in app.url_map.iter_rules():
        for path, _ in paths(rule, samples):
            answers = {method: meaning(adapter, path, method) for method in METHODS}
            ids = {answer[1] for answer in answers.values() if answer is not None}
            if len(ids) > 1:
                found.append(f"{path}: {answers}")
    return found


def shadowed(app: Flask) -> list[str]:
    """Every (rule of a device, valid id) that another rule answers in its place."""
    adapter, samples, found = app.url_map.bind("localhost"), segments(app), []
    for rule in app.url_map.iter_rules():
        if "device_id" not in rule.arguments or rule.defaults:
            continue
        for path, args in paths(rule, samples):
            if not is_valid_device_id(args["device_id"]):
                continue
            for method in sorted((rule.methods or set()) & set(METHODS)):
                if meaning(adapter, path, method) != (rule.endpoint, args["device_id"]):
                    found.append(f"{method} {path}: {meaning(adapter, path, method)} instead of {rule.endpoint}")
    return found


def test_no_path_means_a_device_by_one_method_and_something_else_by_another(app: Flask) -> None:
    assert overlaps(app) == []


def test_no_device_route_is_shadowed_for_any_id(app: Flask) -> None:
    assert len(segments(app)) > 20 and shadowed(app) == []


def test_the_old_import_route_would_be_caught(app: Flask) -> None:
    app.add_url_rule("/api/devices/import", "old_import", lambda: "", methods=["POST"])
    assert any(line.startswith("/api/devices/import: ") for line in overlaps(app))


def test_a_collection_word_before_a_device_route_would_be_caught(app: Flask) -> None:
    app.url_map.add(Rule("/api/devices/export", endpoint="export", methods=["GET"]))
    assert "GET /api/devices/export: ('export', None) instead of api.device" in shadowed(app)
