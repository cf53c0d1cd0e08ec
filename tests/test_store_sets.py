"""Writes over many rows: every row lands, and a few statement texts serve every batch size (shared/store/sets.py)."""

from __future__ import annotations

from pathlib import Path

from shared import store
from shared.store.sets import pieces


def test_pieces_are_powers_of_two_that_add_up() -> None:
    for most in (1, 3, 10_000):
        for n in range(0, 2_100):
            sizes = pieces(n, most)
            assert sum(sizes) == n
            assert all(s & (s - 1) == 0 and s <= most for s in sizes)
    assert len({s for n in range(1, 1_001) for s in pieces(n, 10_000)}) == 10  # 1, 2, 4 … 512


def test_batches_of_every_size_land_through_nine_statement_shapes(tmp_path: Path) -> None:
    conn = store.open_store(tmp_path / "vesper.db")
    texts: set[str] = set()
    conn.set_trace_callback(texts.add)
    sizes = range(1, 301)
    for size in sizes:
        with store.write(conn):
            store.mark_all_alive(conn, [(f"dev-{size}-{i}", float(size), None) for i in range(size)])
    conn.set_trace_callback(None)
    shapes = {t.count("), (") + 1 for t in texts if t.startswith("INSERT INTO devices")}  # rows per statement
    assert shapes == {1, 2, 4, 8, 16, 32, 64, 128, 256}  # a shape per batch size would be 300, each one prepared
    rows = conn.execute("SELECT count(*), count(DISTINCT id), sum(last_seen) FROM devices").fetchone()
    assert rows == (sum(sizes), sum(sizes), float(sum(s * s for s in sizes)))
    assert conn.execute("SELECT count(*) FROM devices WHERE liveness != 'online'").fetchone()[0] == 0
    conn.close()
