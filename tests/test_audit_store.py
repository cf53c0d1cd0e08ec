"""The audit log's table (§14) over a real database: write, read newest first with filters, page by cursor, prune.

Runs on SQLite and (VESPER_TEST_DATABASE=postgresql) PostgreSQL; times are parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import config as config_mod
from shared import store
from shared.store import audit
from shared.store.audit import Entry
from vesper_ingest import sweep

T0 = 1_780_000_000.0
DAY = 86400.0


@pytest.fixture
def db(db_path: Path) -> Iterator[store.Connection]:
    conn = store.open_store(db_path)
    yield conn
    conn.close()


def entry(at: float, actor: str = "alice", action: str = "lifecycle.create_silence", status: int = 201,
          **fields: object) -> Entry:  # fmt: skip
    values: dict[str, object] = {
        "at": at, "actor": actor, "kind": "user", "role": "operator", "address": "192.0.2.7", "method": "POST",
        "action": action, "target": "/api/silences", "status": status, "detail": None,
    }  # fmt: skip
    values.update(fields)
    return Entry(**values)  # type: ignore[arg-type]


def put(conn: store.Connection, *entries: Entry) -> list[int]:
    with store.write(conn):
        return [audit.record(conn, e) for e in entries]


def everything(conn: store.Connection, limit: int, **filters: object) -> list[list[int]]:
    """Every page's ids, following the cursors to the end."""
    pages, cursor = [], None
    while True:
        rows, cursor = audit.entries(conn, limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append([row["id"] for row in rows])
        if cursor is None:
            return pages


def test_an_entry_reads_back_as_written(db: store.Connection) -> None:
    [written] = put(db, entry(T0 + 0.25, detail="device=bell-1", kind="token", address="::1"))
    rows, following = audit.entries(db)
    assert following is None
    assert rows == [{
        "id": written, "at": "2026-05-28T20:26:40.250Z", "actor": "alice", "kind": "token", "role": "operator",
        "address": "::1", "method": "POST", "action": "lifecycle.create_silence", "target": "/api/silences",
        "status": 201, "detail": "device=bell-1",
    }]  # fmt: skip


def test_long_and_hostile_text_is_capped_not_refused(db: store.Connection) -> None:
    put(db, entry(T0, actor="x" * 500, target="/api/devices/" + "y" * 1000, detail="=cmd|' /C calc'!A0" * 100,
                  role=None, address=None))  # fmt: skip
    [row], _ = audit.entries(db)
    assert len(row["actor"]) == audit.CAPS["actor"]
    assert len(row["target"]) == audit.CAPS["target"]
    assert len(row["detail"]) == audit.CAPS["detail"]
    assert row["role"] is None and row["address"] is None


def test_newest_first_and_the_filters(db: store.Connection) -> None:
    ids = put(
        db,
        entry(T0, actor="alice"),
        entry(T0 + 10, actor="bob", action="lifecycle.acknowledge", status=200),
        entry(T0 + 20, actor="alice", action="login.login", status=401),
        entry(T0 + 30, actor="carol", action="lifecycle.acknowledge", status=403),
    )
    assert [r["id"] for r in audit.entries(db)[0]] == ids[::-1]
    assert [r["id"] for r in audit.entries(db, actor="alice")[0]] == [ids[2], ids[0]]
    assert [r["id"] for r in audit.entries(db, action="lifecycle.acknowledge")[0]] == [ids[3], ids[1]]
    assert [r["id"] for r in audit.entries(db, actor="bob", action="lifecycle.acknowledge")[0]] == [ids[1]]
    assert [r["id"] for r in audit.entries(db, start=T0 + 10, end=T0 + 30)[0]] == [ids[2], ids[1]]  # [from, to)
    assert audit.entries(db, actor="nobody") == ([], None)


def test_paging_never_skips_or_repeats_rows_that_share_an_instant(db: store.Connection) -> None:
    """250 rows: 200 at one instant, 50 at another; pages of 7 walk them all, each once, in order."""
    put(db, *(entry(T0 + 5 if i % 5 == 0 else T0, actor=f"u{i % 3}") for i in range(250)))
    pages = everything(db, 7)
    walked = [i for page in pages for i in page]
    assert len(walked) == 250 and len(set(walked)) == 250
    assert all(len(page) == 7 for page in pages[:-1]) and len(pages) == 36
    full = [r["id"] for r in audit.entries(db, limit=1000)[0]]
    assert walked == full
    ones = [i for page in everything(db, 1, actor="u1") for i in page]
    assert ones == [r["id"] for r in audit.entries(db, actor="u1", limit=1000)[0]] and len(ones) == 83


def test_rows_written_while_paging_do_not_disturb_the_pages(db: store.Connection) -> None:
    first = put(db, *(entry(T0) for _ in range(10)))
    rows, cursor = audit.entries(db, limit=4)
    put(db, *(entry(T0) for _ in range(3)), entry(T0 + 1))  # newer: same instant with higher ids, and later
    rest, _ = audit.entries(db, limit=100, cursor=cursor)
    assert [r["id"] for r in rows + rest] == first[::-1]


@pytest.mark.parametrize("cursor", ["", "x", "1.5", "1.5_", "1.5_x", "nan_1_2", "1.5_-3", "1.5_٣"])
def test_a_cursor_it_did_not_give_is_a_value_error(db: store.Connection, cursor: str) -> None:
    with pytest.raises(ValueError):
        audit.entries(db, cursor=cursor)


def test_prune_drops_what_is_older_than_the_retention(db: store.Connection) -> None:
    ids = put(db, entry(T0 - 2), entry(T0 - 1), entry(T0), entry(T0 + 1))
    with store.write(db):
        assert audit.prune(db, T0) == 2
    assert [r["id"] for r in audit.entries(db)[0]] == ids[:1:-1]


def test_the_ingests_prune_keeps_auth_audit_retention_days(db_path: Path, db: store.Connection) -> None:
    cfg = config_mod.from_dict({"auth": {"audit_retention_days": 2}})
    kept = put(db, entry(T0 - 2 * DAY + 1), entry(T0))
    put(db, entry(T0 - 2 * DAY - 1))
    writer = store.Writer(db_path)
    try:
        sweep.prune(writer, cfg, T0)
    finally:
        writer.close()
    assert [r["id"] for r in audit.entries(db)[0]] == kept[::-1]
