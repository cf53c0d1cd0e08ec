"""The timeline's read (§12): GET /api/events paged back with before=ID and filtered, on a real store, both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared import store
from shared.config import Config
from shared.events import dumps
from tests.conftest import database
from vesper_web import create_app

T0 = 1_700_000_000.0
KINDS = [("alert", "critical"), ("playback_started", "info"), ("alert", "warning"), ("playback_stopped", "info"),
         ("device_offline", "warning"), ("alert_cleared", "info")]  # fmt: skip
TOTAL = 600


def kind_of(i: int) -> tuple[str, str]:
    return KINDS[i % len(KINDS)]


@pytest.fixture(scope="module")
def client(module_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """600 events over 12 devices; bell-0..3 at site north, bell-0 and bell-5 tagged quiet (once: tests only read)."""
    app = create_app(Config(database=database(module_db_path, tmp_path_factory.mktemp("timeline"))))
    conn = store.open_store(module_db_path)
    with store.write(conn):
        for n in range(12):
            site = "north" if n < 4 else "south"
            tags = ["quiet"] if n in (0, 5) else []
            store.put_entry(conn, f"bell-{n}", {"name": None, "site": site, "tags": tags, "notes": None,
                                                "heartbeat_timeout_s": None}, T0)  # fmt: skip
        rows = [(T0 + i, *kind_of(i), f"bell-{i % 12}", dumps({"subsystem": "Audio"})) for i in range(TOTAL)]
        store.insert_events(conn, rows)
    conn.close()
    return app.test_client()


def _get(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def _page_back(client: FlaskClient, query: str, limit: int) -> list[int]:
    """Every id the filter gives, paged back from the newest through before=ID, each page oldest first."""
    seen: list[int] = []
    url = f"/api/events?limit={limit}{query}"
    while True:
        ids = [e["id"] for e in _get(client, url)["events"]]
        assert ids == sorted(ids)
        seen = ids + seen
        if len(ids) < limit:
            return seen
        url = f"/api/events?limit={limit}&before={ids[0]}{query}"


def test_600_events_paged_back_to_the_oldest_none_missing_none_repeated(client: FlaskClient) -> None:
    assert _page_back(client, "", 70) == list(range(1, TOTAL + 1))
    assert _get(client, "/api/events?before=1")["events"] == []
    assert [e["id"] for e in _get(client, "/api/events?before=11&limit=3")["events"]] == [8, 9, 10]


@pytest.mark.parametrize(("query", "want"), [
    ("&type=alert", lambda i, k, s: k == "alert"),
    ("&type=device_offline&type=alert_cleared", lambda i, k, s: k in ("device_offline", "alert_cleared")),
    ("&type=device_offline,alert_cleared", lambda i, k, s: k in ("device_offline", "alert_cleared")),
    ("&not_type=playback_started,playback_stopped", lambda i, k, s: not k.startswith("playback")),
    ("&severity=critical", lambda i, k, s: s == "critical"),
    ("&severity=warning&severity=critical", lambda i, k, s: s in ("warning", "critical")),
    ("&severity=info&not_type=playback_started&not_type=playback_stopped", lambda i, k, s: k == "alert_cleared"),
    ("&type=alert&severity=warning", lambda i, k, s: k == "alert" and s == "warning"),
    ("&device=bell-3", lambda i, k, s: i % 12 == 3),
    ("&site=north", lambda i, k, s: i % 12 < 4),
    ("&site=north&type=alert", lambda i, k, s: i % 12 < 4 and k == "alert"),
    ("&tag=quiet", lambda i, k, s: i % 12 in (0, 5)),
    ("&tag=quiet&site=south", lambda i, k, s: i % 12 == 5),
    ("&device=bell-5&site=north", lambda i, k, s: False),
    ("&site=nowhere", lambda i, k, s: False),
    ("&type=alert&not_type=alert", lambda i, k, s: False),
])  # fmt: skip
def test_each_filter_pages_back_and_tails_alike(client: FlaskClient, query: str, want: Any) -> None:
    expected = [i + 1 for i in range(TOTAL) if want(i, *kind_of(i))]
    assert _page_back(client, query, 37) == expected
    # the live tail: after=ID with the same filter gives the rest, in order
    middle = TOTAL // 2
    tail = [e["id"] for e in _get(client, f"/api/events?after={middle}&limit=1000{query}")["events"]]
    assert tail == [i for i in expected if i > middle]
    between = [e["id"] for e in _get(client, f"/api/events?after=100&before=200&limit=1000{query}")["events"]]
    assert between == [i for i in expected if 100 < i < 200]


@pytest.mark.parametrize(("query", "named"), [
    ("type=nonsense", "type"), ("type=alert,bogus", "type"), ("not_type=playback", "not_type"),
    ("severity=fatal", "severity"), ("severity=info,loud", "severity"), ("before=0", "before"),
    ("before=-3", "before"), ("before=x", "before"), ("site=", "site"), ("site=" + "s" * 129, "site"),
    ("site=a%01b", "site"), ("tag=Not-A-Tag", "tag"), ("tag=", "tag"), ("tag=a&tag=b", "tag"),
    ("device=", "device"), ("device=a/b", "device"), ("after=-1", "after"),
])  # fmt: skip
def test_bad_parameters_are_400_naming_them(client: FlaskClient, query: str, named: str) -> None:
    error = _get(client, f"/api/events?{query}", 400)["error"]
    assert error.startswith(named), error


def test_unknown_type_lists_the_known(client: FlaskClient) -> None:
    error = _get(client, "/api/events?type=silenced", 400)["error"]
    assert "silence_created" in error and "alert_acknowledged" in error
