"""The device list's `q` by its index (§12, search.py): kept in step with every write that changes what q reads.

After each kind of write (the ingest's new device, a registry PATCH, a CSV import, a bulk add_tag, a forget)
q finds a device by its id, name, site or tag, and search.candidates (the index alone) says so too.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from flask.testing import FlaskClient

from shared import store
from shared.store import listing, search
from tests import test_registry_api
from tests.test_bulk_api import post
from tests.test_ingest_inprocess import heartbeat
from tests.test_registry_api import delete, import_csv, patch
from vesper_ingest.service import Ingest

client = test_registry_api.client  # fixtures: the app's test client, and an in-process Ingest on its database
ingest = test_registry_api.ingest


def found(client: FlaskClient, db_path: Path, q: str) -> set[str]:
    """The ids GET /api/devices?q= lists, checked against what the index alone gives (a superset of them)."""
    response = client.get(f"/api/devices?q={quote(q)}")
    assert response.status_code == 200, response.get_data(as_text=True)
    listed = {d["id"] for d in response.get_json()}
    conn = store.connect(db_path, readonly=True)
    try:
        candidates = search.candidates(conn, q, listing._like(q), listing.COUNT_CAP)
    finally:
        conn.close()
    assert candidates is not None and listed <= set(candidates), (q, listed, candidates)
    return listed


def test_q_finds_after_each_write(client: FlaskClient, ingest: Ingest, db_path: Path) -> None:
    ingest.process([heartbeat(ingest, "Bell-Tower-7")])  # the ingest's insert of a new device
    assert found(client, db_path, "tower-7") == {"Bell-Tower-7"}
    patch(client, "Bell-Tower-7", {"name": "Tenor Bell", "site": "Abbey Close", "tags": ["carillon"]})
    for q in ("TENOR", "abbey clo", "carillon", "tower-7"):
        assert found(client, db_path, q) == {"Bell-Tower-7"}, q
    patch(client, "Bell-Tower-7", {"name": "Treble", "site": None})
    assert found(client, db_path, "tenor") == found(client, db_path, "abbey") == set()
    assert found(client, db_path, "treble") == {"Bell-Tower-7"}

    import_csv(client, "id,name,site,tags\nbell-2,Great Tom,Christ Church,hours quarters\n")
    for q in ("bell-2", "great tom", "christ", "quarters"):
        assert found(client, db_path, q) == {"bell-2"}, q
    import_csv(client, "id,site\nBell-Tower-7,Christ Church\n")  # an import's update of a known device
    assert found(client, db_path, "christ") == {"bell-2", "Bell-Tower-7"}

    answer = post(client, {"filter": {"q": "christ"}, "action": "add_tag", "tag": "belfry"}, 200)
    assert answer["count"] == 2
    assert found(client, db_path, "belfry") == {"bell-2", "Bell-Tower-7"}

    delete(client, ingest, "bell-2")  # the forget: its devices row and its registry entry go
    assert found(client, db_path, "belfry") == found(client, db_path, "treble") == {"Bell-Tower-7"}
    assert found(client, db_path, "bell-2") == set()


def test_short_and_odd_q_read_as_before(client: FlaskClient, ingest: Ingest, db_path: Path) -> None:
    """q of 1 or 2 characters keeps the scan; quotes, % and _ are text, for the index as for the LIKE."""
    for device_id in ("ab-1", "ab_2"):
        ingest.process([heartbeat(ingest, device_id)])
    assert {d["id"] for d in client.get("/api/devices?q=ab").get_json()} == {"ab-1", "ab_2"}
    conn = store.connect(db_path, readonly=True)
    try:
        assert search.candidates(conn, "ab", "%ab%", listing.COUNT_CAP) is None
    finally:
        conn.close()
    assert found(client, db_path, "b_2") == {"ab_2"}
    patch(client, "ab-1", {"name": 'say "50% off" NOT (*)'})
    for q in ('"50%', "0% o", "NOT (*)", 'say "'):
        assert found(client, db_path, q) == {"ab-1"}, q
    assert found(client, db_path, "0%_o") == set()


def test_no_trigger_fires_on_a_heartbeats_update(db_path: Path) -> None:
    """SQLite's triggers: on devices' INSERT and DELETE (and the registry's writes), never on devices' UPDATE."""
    conn = store.open_store(db_path)
    try:
        if conn.dialect.name != "sqlite":
            return  # PostgreSQL's index is pg_trgm's GIN on devices.id: an UPDATE of other columns leaves it
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%search%'")
        on_devices = {name: sql for name, sql in rows if " ON devices " in sql}
        assert set(on_devices) == {"device_search_insert", "device_search_delete"}
        assert not any("UPDATE" in sql.split(" BEGIN")[0] for sql in on_devices.values())
    finally:
        conn.close()
