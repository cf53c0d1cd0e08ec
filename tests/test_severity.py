"""The alert severity order has one home; the SQL, the health colour and the console's JS come from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared import severity, store


def test_sql_rank_orders_like_the_definition(tmp_path: Path) -> None:
    """The CASE the store sorts with gives each state its rank in ALERT_STATES_BY_RANK."""
    conn = store.open_store(tmp_path / "v.db")
    for state in ["WARNING", "FAILED", "CRITICAL"]:
        got = conn.execute(f"SELECT {severity.rank_sql('?')}", (state,)).fetchone()[0]
        assert got == severity.ALERT_STATES_BY_RANK.index(state)
    assert conn.execute(f"SELECT {severity.rank_sql('?')}", ("CLEARED",)).fetchone()[0] is None


@pytest.mark.parametrize(
    ("liveness", "worst", "expected"),
    [
        ("offline", 0, "offline"),
        ("online", 0, "critical"),
        ("online", 1, "critical"),
        ("online", 2, "warning"),
        ("unknown", 2, "warning"),
        ("unknown", None, "unknown"),
        ("online", None, "ok"),
    ],
)
def test_health(liveness: str, worst: int | None, expected: str) -> None:
    """Offline beats alerts; alerts beat unknown; otherwise ok."""
    assert severity.health(liveness, worst) == expected


def test_console_gets_the_order_from_the_server(app) -> None:
    """/static/rules.js is generated from the definition, and no script keeps its own copy."""
    response = app.test_client().get("/static/rules.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    ranks = dict(re.findall(r"(\w+): (\d)", response.get_data(as_text=True).split("STATE_RANK")[1].split(";")[0]))
    assert {state: int(rank) for state, rank in ranks.items()} == severity.ALERT_RANK
    static = Path(__file__).parent.parent / "vesper_web" / "static"
    for script in static.glob("*.js"):
        assert "FAILED: 0" not in script.read_text(), script.name
