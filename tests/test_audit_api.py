"""The audit log (§14) through Flask's test client on a real database (SQLite, and PostgreSQL in POSTGRES_TESTS):
what a state-changing request records whatever its answer, sign-ins without the password, GET /api/audit's filters,
paging, CSV (header, defused cells, streamed a page at a time), 400s naming the parameter, and who may read it."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from shared import config as config_mod
from shared import store
from shared.store import audit as audit_store
from tests.conftest import database
from tests.test_security import PASSWORD, SITE, csrf_of, sign_in
from vesper_web import audit, audit_trail, create_app
from vesper_web.passwd import new_token, token_hash

LINK = re.compile(r'<([^>]+)>; rel="next"')
T0 = 1_780_000_000.0
ADMIN, ADMIN_LINE = new_token("root", "admin")
OPERATOR, OPERATOR_LINE = new_token("ops", "operator")
VIEWER, VIEWER_LINE = new_token("screen", "viewer")
NORTH = "acme-north-token"
OLGA_LINE = "olga:operator:" + generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
CLIENT = "203.0.113.9"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Flask:
    """Sign-in on: an operator user, admin, operator and viewer tokens, an admin token limited to a site."""
    north = {"name": "acme", "role": "admin", "hash": token_hash(NORTH), "sites": ["north"]}
    auth = config_mod.from_dict(
        {"auth": {"users": [OLGA_LINE], "tokens": [ADMIN_LINE, OPERATOR_LINE, VIEWER_LINE, north],
                  "login_backoff_s": 0}}  # fmt: skip
    ).auth
    return create_app(config_mod.Config(database=database(db_path, tmp_path), auth=auth))


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        c.environ_base["REMOTE_ADDR"] = CLIENT
        yield c


def read(client: FlaskClient, query: str = "", token: str = ADMIN) -> list[dict[str, Any]]:
    response = client.get(f"/api/audit{query}", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def seed(db: Path | str, n: int, **fields: Any) -> None:
    """n entries one second apart from T0, by u0, u1, u2 in turn."""
    conn = store.open_store(db)
    with store.write(conn):
        for i in range(n):
            values = {"at": T0 + i, "actor": f"u{i % 3}", "kind": "user", "role": "operator", "address": "::1",
                      "method": "POST", "action": "lifecycle.acknowledge", "target": f"/api/x/{i}", "status": 200,
                      **fields}  # fmt: skip
            audit_store.record(conn, audit_store.Entry(**values))
    conn.close()


# --- who may read it ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"), [(VIEWER, 403), (OPERATOR, 403), (NORTH, 403), (ADMIN, 200)],
    ids=["viewer", "operator", "admin-of-a-site", "admin"],
)  # fmt: skip
def test_only_an_unlimited_admin_reads_the_log(client: FlaskClient, token: str, status: int) -> None:
    for path in ("/api/audit", "/api/audit?format=csv"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == status, path
        response.get_data()  # a CSV is streamed: read to its end
        if status == 403:
            assert "role_needed" in response.get_json() or "sites" in response.get_json()["error"]
    assert client.get("/audit", headers=bearer(token)).status_code == status


def test_the_page_needs_admin_and_links_its_script(client: FlaskClient) -> None:
    sign_in(client, user="olga")
    assert client.get("/audit").status_code == 403
    page = client.get("/audit", headers=bearer(ADMIN)).get_data(as_text=True)
    assert 'src="/static/audit.js"' in page and 'id="audit-csv"' in page and "<script>" not in page


# --- what is recorded ---------------------------------------------------------------------------------------------


def test_a_write_is_recorded_with_who_from_where_what_and_the_status(client: FlaskClient) -> None:
    body = {"device": "bell-1", "duration_s": 3600, "comment": "replacing the clapper, call Ann on 555-0199"}
    assert client.post("/api/silences", json=body, headers=bearer(OPERATOR)).status_code == 201
    client.get("/api/silences", headers=bearer(OPERATOR))  # a read: not recorded
    [entry] = read(client)
    assert {k: v for k, v in entry.items() if k not in ("id", "at")} == {
        "actor": "ops", "kind": "token", "role": "operator", "address": CLIENT, "method": "POST",
        "action": "lifecycle.create_silence", "target": "/api/silences", "status": 201,
        "detail": "device=bell-1 duration_s=3600",  # never the comment (free text)
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["at"])


def test_refused_and_failed_requests_are_recorded_too(client: FlaskClient, app: Flask) -> None:
    client.post("/api/silences", json={"duration_s": 60}, headers=bearer(VIEWER))  # 403: the role
    client.post("/api/silences", json={"duration_s": 60})  # 401: nobody
    client.post("/api/silences", json={"duration_s": 60}, headers=bearer("vsp_not-a-token"))  # 401: a bad token
    client.delete("/api/silences/12345", headers=bearer(OPERATOR))  # 404
    client.post("/api/silences", json={"device": "bad id!", "duration_s": 9}, headers=bearer(OPERATOR))  # 400
    client.post("/api/nowhere", headers=bearer(ADMIN))  # no route
    got = [(e["actor"], e["kind"], e["role"], e["action"], e["status"]) for e in read(client)[::-1]]
    assert got == [
        ("screen", "token", "viewer", "lifecycle.create_silence", 403),
        ("anonymous", "anonymous", None, "lifecycle.create_silence", 401),
        ("anonymous", "anonymous", None, "lifecycle.create_silence", 401),
        ("ops", "token", "operator", "lifecycle.expire_silence", 404),
        ("ops", "token", "operator", "lifecycle.create_silence", 400),
        ("root", "token", "admin", audit_trail.UNROUTED, 404),
    ]
    details = [e["detail"] for e in read(client)[::-1]]
    assert details[0] == "fleet duration_s=60; error: this needs the operator role (yours: viewer)"
    assert details[4].startswith("device=bad id! duration_s=9; error: device: a device id")
    assert "vsp_not-a-token" not in str(read(client))


def test_a_server_error_is_recorded(db_path: Path, tmp_path: Path) -> None:
    app = create_app(config_mod.Config(database=database(db_path, tmp_path)))

    def boom() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/api/boom", "boom", boom, methods=["POST"])
    client = app.test_client()
    assert client.post("/api/boom").status_code == 500
    [entry] = client.get("/api/audit").get_json()
    assert (entry["actor"], entry["kind"], entry["role"], entry["status"]) == ("local", "local", "admin", 500)


def test_sign_ins_are_recorded_with_the_name_tried_never_the_password(client: FlaskClient) -> None:
    secret = "hunter2-never-stored"
    assert sign_in(client, password=secret, user="=olga").status_code == 401
    client.environ_base["REMOTE_ADDR"] = "198.51.100.4"  # another address: no wait for the sign-in backoff
    assert sign_in(client, password=secret, user="olga").status_code == 401
    assert sign_in(client, user="olga").status_code == 303
    assert client.post("/logout", data={"csrf_token": csrf_of(client)}, headers={"Origin": SITE}).status_code == 303
    entries = read(client)[::-1]
    got = [(e["actor"], e["kind"], e["role"], e["address"], e["action"], e["status"], e["detail"]) for e in entries]
    assert got == [
        ("=olga", "anonymous", None, CLIENT, "login.login", 401, "sign-in failed (1 in a row)"),
        ("olga", "anonymous", None, "198.51.100.4", "login.login", 401, "sign-in failed (1 in a row)"),
        ("olga", "user", "operator", "198.51.100.4", "login.login", 303, "signed in"),
        ("olga", "user", "operator", "198.51.100.4", "login.logout", 303, "signed out"),
    ]
    answers = client.get("/api/audit", headers=bearer(ADMIN)).get_data(as_text=True)
    answers += client.get("/api/audit?format=csv", headers=bearer(ADMIN)).get_data(as_text=True)
    assert secret not in answers and PASSWORD not in answers
    assert ",'=olga,anonymous," in answers  # the name tried, defused in the CSV


def test_a_failed_write_of_the_entry_leaves_the_answer_and_is_counted(
    client: FlaskClient, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = store.open_store(db_path)
    with store.write(conn):
        conn.execute("DROP TABLE audit")
    conn.close()
    with caplog.at_level(logging.WARNING, logger="vesper_web.audit_trail"):
        response = client.post("/api/silences", json={"device": "bell-1", "duration_s": 60}, headers=bearer(ADMIN))
    assert response.status_code == 201
    assert "an audit entry was not stored (POST lifecycle.create_silence by 'root', 201)" in caplog.text
    metrics = client.get("/metrics", headers=bearer(ADMIN)).get_data(as_text=True)
    assert "vesper_web_audit_failed_total 1.0" in metrics


# --- reading it ---------------------------------------------------------------------------------------------------


def test_filters_by_time_actor_and_action(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, 9)
    seed(db_path, 1, at=T0 + 100, action="login.login", actor="u1", status=401)
    ids = [e["target"] for e in read(client, "?actor=u1")]
    assert ids == ["/api/x/0", "/api/x/7", "/api/x/4", "/api/x/1"]
    assert [e["target"] for e in read(client, "?actor=u1&action=lifecycle.acknowledge")][-1] == "/api/x/1"
    assert [e["status"] for e in read(client, "?action=login.login")] == [401]
    window = "?from=2026-05-28T20:26:42Z&to=2026-05-28T20:26:45Z"  # T0 + 2 .. T0 + 5, to excluded
    assert [e["target"] for e in read(client, window)] == ["/api/x/4", "/api/x/3", "/api/x/2"]
    assert read(client, "?actor=nobody") == []


def test_pages_follow_the_link_and_walk_every_entry_once(client: FlaskClient, db_path: Path) -> None:
    seed(db_path, 25, at=T0)  # one instant: the id splits them
    seen, url = [], "/api/audit?limit=10&actor=u2"
    while url:
        response = client.get(url, headers=bearer(ADMIN))
        seen += [e["id"] for e in response.get_json()]
        found = LINK.search(response.headers.get("Link", ""))
        url = found.group(1) if found else ""
        assert not found or "actor=u2" in url
    assert len(seen) == len(set(seen)) == 8 and seen == sorted(seen, reverse=True)


def test_csv_has_its_header_defuses_cells_and_holds_every_matching_entry(
    client: FlaskClient, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "CSV_PAGE", 3)  # several pages streamed
    seed(db_path, 10, detail="=HYPERLINK(\"http://x\")", target="+1", address="@a")
    response = client.get("/api/audit?format=csv", headers=bearer(ADMIN))
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert len(rows) == 11 and len({r[0] for r in rows[1:]}) == 10
    first = dict(zip(rows[0], rows[1], strict=True))
    assert (first["detail"], first["target"], first["address"]) == ("'=HYPERLINK(\"http://x\")", "'+1", "'@a")
    assert first["at"] == "2026-05-28T20:26:49.000Z" and first["actor"] == "u0"
    limited = client.get("/api/audit?format=csv&limit=4&actor=u0", headers=bearer(ADMIN)).get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(limited)))) == 1 + 4


@pytest.mark.parametrize(
    ("query", "named"),
    [("from=yesterday", "from"), ("to=2026-13-01", "to"), ("actor=" + "a" * 65, "actor"), ("action=a%01b", "action"),
     ("limit=0", "limit"), ("limit=1001", "limit"), ("cursor=1.5_x", "cursor"), ("format=xml", "format"),
     ("format=csv&cursor=nope", "cursor")],  # fmt: skip
)
def test_a_bad_parameter_is_a_400_naming_it(client: FlaskClient, query: str, named: str) -> None:
    response = client.get(f"/api/audit?{query}", headers=bearer(ADMIN))
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(f"{named}:")


# --- the detail's summary, a table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "said"),
    [
        ("lifecycle.create_silence", {"tag": "roof", "ends_at": "2026-01-01T00:00:00Z", "comment": "x"},
         "tag=roof ends_at=2026-01-01T00:00:00Z"),
        ("lifecycle.create_silence", {"duration_s": 60}, "fleet duration_s=60"),
        ("bulk.bulk", {"action": "add_tag", "tag": "roof", "filter": {"site": "North"}, "dry_run": True},
         'action=add_tag dry_run=true filter={"site":"North"} tag=roof'),
        ("registry.patch_device", {"site": "S", "notes": "the key is under the mat"}, "fields: notes, site"),
        ("notifications.notify_test", {"channel": "ops\r\nInjected: yes"}, "channel=ops??Injected: yes"),
        ("lifecycle.acknowledge", {"note": "free text"}, None),
        ("bulk.bulk", ["not", "an", "object"], None),
        ("bulk.bulk", {"action": "x" * 500}, "action=" + "x" * audit_trail.MAX_VALUE),
    ],
)  # fmt: skip
def test_the_summary_quotes_only_named_fields_on_one_line(endpoint: str, body: Any, said: str | None) -> None:
    assert audit_trail.summary(endpoint, body) == said


def test_a_sign_in_too_large_or_by_someone_signed_in_names_what_was_tried(client: FlaskClient) -> None:
    too_large = {"username": "x", "pad": "p" * 20_000}
    assert client.post("/login", data=too_large, headers={"Origin": SITE}).status_code == 413
    sign_in(client, user="olga")
    assert sign_in(client, user="root", password="guess").status_code == 401  # signed in as olga, tries root
    got = [(e["actor"], e["kind"], e["status"]) for e in read(client)[::-1]]
    assert got == [("anonymous", "anonymous", 413), ("olga", "user", 303), ("root", "anonymous", 401)]
