"""One vocabulary (shared/vocabulary.py): every reader takes its words from the table, and says them the same way."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Route

from shared import notify_text
from shared.events import NewEvent
from shared.notify_config import NOTIFY_TYPES
from shared.topics import Topics
from shared.vocabulary import EVENT_TYPES, TOPIC_KINDS, plain, render
from tests.browser import browser  # noqa: F401 - the fixture
from vesper_ingest import apply, classify
from vesper_ingest.flooding import EXEMPT
from vesper_ingest.notify.grouping import PROBLEMS, RECOVERY

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "vesper_web" / "static"
TIME = "2026-12-07T01:02:03.456Z"
FIELD = re.compile(r"\{(\w+)(?::(\w+))?\}")


def test_every_topic_kind_has_a_handler_and_a_subscription() -> None:
    """A kind in the table is subscribed to, parsed and applied; nothing else is."""
    assert set(apply.HANDLERS) == set(TOPIC_KINDS)
    assert [topic for topic, _ in Topics().subscriptions()] == [f"vesper/+/status/{k}" for k in TOPIC_KINDS]
    assert set(classify.PARSERS) <= set(TOPIC_KINDS)


def test_every_event_type_the_code_makes_is_in_the_table() -> None:
    """The types named where events are made (NewEvent(...), and the ones the store or notifier makes up) have a row."""
    made = set()
    for path in [*ROOT.glob("vesper_ingest/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        source = path.read_text()
        made |= set(re.findall(r'NewEvent\(\s*"(\w+)"', source))
        made |= set(re.findall(r'"type": "(\w+)"', source))
    assert made and made <= set(EVENT_TYPES), sorted(made - set(EVENT_TYPES))


def test_the_readers_take_the_table() -> None:
    """Severity, rule types, problems and their ends, flood exemption: all from the rows."""
    assert set(NOTIFY_TYPES) == set(EVENT_TYPES)
    assert NewEvent("device_flooding", "d").severity == "warning" and NewEvent("made_up", "d").severity == "info"
    assert set(PROBLEMS) == {"alert", "device_offline", "monitoring_interrupted"}
    assert RECOVERY == {"alert_cleared": "alert", "device_online": "device_offline",
                        "monitoring_resumed": "monitoring_interrupted"}
    assert {"device_online", "device_offline"} == EXEMPT
    for name, event in EVENT_TYPES.items():
        assert not event.ends or EVENT_TYPES[event.ends].problem, name
        assert event.category in ("", *notify_text.CATEGORIES), name


@pytest.mark.parametrize(
    ("words", "payload", "expected"),
    [
        ("{a} {b}[: {c}][ (was {d})]", {"a": "x", "b": "y"}, "x y"),
        ("{a} {b}[: {c}][ (was {d})]", {"a": "x", "b": "y", "c": "", "d": "z"}, "x y (was z)"),
        ("{a}|none", {"a": None}, "none"),
        ("{a}|none", {"a": 0}, "0"),
        ("{a:json}", {"a": {"k": [1, "é"]}}, '{"k":[1,"é"]}'),
        ("{a}", {}, ""),
        ("{a}", {"a": "{a} [b] |c"}, "{a} [b] |c"),  # a device's string is never words
    ],
)
def test_render(words: str, payload: dict[str, Any], expected: str) -> None:
    assert render(words, payload) == expected


def test_a_notification_line_is_the_device_and_the_words() -> None:
    """The same words as the console, each device string cleaned to one plain line."""
    event = {"type": "alert_cleared", "source_id": "bell-1", "severity": "info",
             "payload": {"subsystem": "Audio\n<b>", "previous_state": "CRITICAL"}}
    assert notify_text.line(event) == "bell-1: Audio <b> cleared (was CRITICAL)"
    assert notify_text.line({**event, "type": "firmware_x", "payload": {}}) == "bell-1: firmware_x"


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every type with all its fields, with none, and with each one missing."""
    for name, event in EVENT_TYPES.items():
        fields = {m[1]: (TIME if m[2] == "time" else {"n": 1} if m[2] == "json" else f"<{m[1]}>")
                  for m in FIELD.finditer(event.words)}
        yield name, fields
        yield name, {}
        for gone in fields:
            yield name, {k: v for k, v in fields.items() if k != gone}


@pytest.fixture
def static_page(browser: Browser, app: Flask) -> Iterator[Any]:  # noqa: F811 - the fixture
    """A page on a made-up origin serving the console's scripts, rules.js as the web generates it."""
    rules = app.test_client().get("/static/rules.js").get_data(as_text=True)

    def serve(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        body = rules if name == "rules.js" else (STATIC / name).read_text() if (STATIC / name).is_file() else ""
        kind = "text/javascript" if name.endswith(".js") else "text/html"
        route.fulfill(status=200 if body or name == "blank" else 404, body=body, content_type=kind)

    context = browser.new_context()
    page = context.new_page()
    page.route("http://vesper.test/**", serve)
    page.goto("http://vesper.test/blank")
    yield page
    context.close()


def test_the_console_says_what_notifications_say(static_page: Any) -> None:
    """console.js renders every type's words as render() does (times as the page's clock shows them)."""
    events = [{"type": name, "payload": payload} for name, payload in cases()]
    said, clock = static_page.evaluate(
        """async ([events, time]) => {
            const m = await import("/static/console.js");
            return [events.map((e) => m.describeEvent(e)), m.clockTime(time)];
        }""",
        [events, TIME],
    )
    show = lambda value, form: clock if form == "time" else plain(value, form)  # noqa: E731
    expected = [render(EVENT_TYPES[e["type"]].words, e["payload"], show) for e in events]
    assert said == expected
    labels = static_page.evaluate('async () => (await import("/static/console.js")).TYPE_LABEL')
    assert labels == {name: event.label for name, event in EVENT_TYPES.items()}


def test_the_worked_example_still_applies(tmp_path: Path) -> None:
    """docs/development.md's firmware_changed: its patch touches three files, applies here, and its test passes."""
    patch = ROOT / "docs" / "examples" / "firmware_changed.patch"
    touched = re.findall(r"^diff --git a/(\S+)", patch.read_text(), re.MULTILINE)
    assert sorted(touched) == ["shared/vocabulary.py", "tests/test_firmware.py", "vesper_ingest/apply.py"]
    tracked = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]  # the tree as it is now
    listed = subprocess.run(tracked, cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, tmp_path / name)
    subprocess.run(["git", "apply", str(patch)], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_firmware.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
