"""Silences told as events (§12): silence_created and silence_ended with time passed in, on a real store, both engines.

`told` is written in the transaction that stores the events: a sweep rolled back (a kill before its commit) tells
again, a committed one never repeats.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from shared import store
from shared.events import iso
from shared.silences import Silence
from vesper_ingest import silence_events
from vesper_ingest.batch import store_events

T0 = 1_700_000_000.0


@pytest.fixture
def conn(db_path: Path) -> store.Connection:
    connection = store.open_store(db_path)
    yield connection
    connection.close()


def add(conn: store.Connection, **fields: object) -> int:
    base = {"device_id": None, "tag": None, "subsystem": None, "starts_at": T0, "ends_at": T0 + 3600}
    silence = Silence(0, **{**base, **fields}, created_by="user alice", created_at=T0)  # type: ignore[arg-type]
    with store.write(conn):
        return store.add_silence(conn, silence)


def sweep(conn: store.Connection, now: float) -> list[tuple[str, str, dict]]:
    """One sweep's telling, committed with its events as the ingest's sweep does."""
    with store.write(conn):
        events = silence_events.tell(conn, now)
        store_events(conn, events, now, Counter(), None)
    return [(e.type, e.source_id, e.payload) for e in events]


def test_created_then_ended_as_planned_each_once(conn: store.Connection) -> None:
    sid = add(conn, device_id="bell-7", subsystem="Audio", comment="amp swap")
    [(kind, source, payload)] = sweep(conn, T0 + 1)
    assert (kind, source) == ("silence_created", "bell-7")
    assert payload == {"id": sid, "matchers": {"device_id": "bell-7", "subsystem": "Audio"},
                       "scope": "device bell-7, subsystem Audio", "ends_at": iso(T0 + 3600),
                       "by": "user alice", "comment": "amp swap"}  # fmt: skip
    assert sweep(conn, T0 + 2) == []  # told: nothing more until its end
    assert sweep(conn, T0 + 3599.9) == []
    [(kind, source, payload)] = sweep(conn, T0 + 3600)
    assert (kind, source, payload["by"]) == ("silence_ended", "bell-7", None)
    assert sweep(conn, T0 + 7200) == []


def test_ended_early_names_who_and_a_silence_never_told_gets_both_in_order(conn: store.Connection) -> None:
    sid = add(conn, tag="north")
    with store.write(conn):
        assert store.expire_silence(conn, sid, T0 + 5, "token ci")
    told = sweep(conn, T0 + 6)
    assert [(k, s) for k, s, _ in told] == [("silence_created", f"silence:{sid}"), ("silence_ended", f"silence:{sid}")]
    assert told[1][2]["by"] == "token ci" and told[1][2]["ends_at"] == iso(T0 + 5)
    assert told[0][2]["scope"] == "tag north"


def test_a_bulk_silence_shows_a_count_and_a_few_ids(conn: store.Connection) -> None:
    ids = frozenset(f"bell-{n:05d}" for n in range(10_000))
    add(conn, device_ids=ids, site="north")
    [(_, source, payload)] = sweep(conn, T0)
    assert payload["matchers"] == {"site": "north", "device_count": 10_000,
                                   "device_ids": ["bell-00000", "bell-00001", "bell-00002"]}  # fmt: skip
    assert payload["scope"] == "site north, 10000 devices (bell-00000, bell-00001, bell-00002, …)"
    assert source.startswith("silence:")
    add(conn, device_ids=frozenset({"bell-1"}))
    assert [s for _, s, _ in sweep(conn, T0)] == ["bell-1"]  # a list of one is that device's
    add(conn)
    assert sweep(conn, T0)[0][2]["scope"] == "the whole fleet"


def test_a_rolled_back_sweep_tells_again_a_committed_one_never(conn: store.Connection) -> None:
    add(conn, device_id="bell-1")
    with pytest.raises(RuntimeError), store.write(conn):  # the process dies before its commit
        assert len(silence_events.tell(conn, T0)) == 1
        raise RuntimeError("killed")
    assert [k for k, _, _ in sweep(conn, T0)] == ["silence_created"]
    assert sweep(conn, T0) == []
    assert [e["type"] for e in store.timeline(conn, store.Timeline())] == ["silence_created"]


def test_a_backlog_is_told_a_bounded_number_per_sweep(conn: store.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(silence_events, "PER_SWEEP", 4)
    for n in range(10):
        add(conn, device_id=f"bell-{n}", ends_at=T0 + 1)
    sizes = [len(sweep(conn, T0 + 10)) for _ in range(4)]
    assert sizes == [8, 8, 4, 0]  # 4 silences a sweep, each created and ended
