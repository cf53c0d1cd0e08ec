"""Security against the real processes: gunicorn's start-up refusal, sign-in and tokens over HTTP,
forged and malformed commands checked on a real broker, the command limit and its audit log, the
bridge on a TLS + password Mosquitto, and the session cookie over HTTPS.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shared import store
from shared.config import load
from tests.conftest import Broker
from tests.support import Peer, Process, wait_for, web_args
from tests.tls import make_server_cert, tls_broker_settings
from vesper_sim import broker as broker_mod
from vesper_web.passwd import new_token, user_line

PASSWORD = "correct horse battery"
USERS = [user_line("alice", PASSWORD)]  # scrypt, as the CLI makes them
TOKEN, TOKEN_LINE = new_token("deploy-bot")
AUTH = {"users": USERS, "tokens": [TOKEN_LINE], "login_backoff_s": 0.2}
REFUSAL = "is not a loopback address and no authentication is configured: refusing to start"


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


@dataclass
class Http:
    """A tiny browser-ish client: raw paths (nothing re-encoded), the session cookie kept, no redirects followed."""

    base: str
    context: ssl.SSLContext | None = None
    cookie: str | None = None
    source: str = ""  # the client's own address, e.g. 127.0.0.3 (Linux routes all of 127/8 to lo)
    origin: str = field(init=False)

    def __post_init__(self) -> None:
        self.origin = self.base.rstrip("/")

    def _connection(self) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(self.base)
        source = (self.source, 0) if self.source else None
        if parts.scheme == "https":
            return http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=30, context=self.context, source_address=source
            )
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=source)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None) -> Reply:
        """Send one request and read the whole answer."""
        all_headers = dict(headers or {})
        if self.cookie:
            all_headers.setdefault("Cookie", self.cookie)
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            reply = Reply(response.status, response.headers, response.read())
        finally:
            conn.close()
        for set_cookie in reply.headers.get_all("Set-Cookie") or []:
            name_value = set_cookie.split(";", 1)[0]
            if name_value.startswith("vesper_session="):
                self.cookie = None if name_value == "vesper_session=" else name_value
        return reply

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, headers)

    def sign_in(self, user: str = "alice", password: str = PASSWORD) -> Reply:
        """Fetch the form (session cookie + CSRF token) and post it from this origin."""
        form = self.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        body = {"username": user, "password": password, "csrf_token": token, "next": "/"}
        return self.request("POST", "/login", {"Origin": self.origin}, body)

    def button(self, device: str) -> Reply:
        """What the console's "Run health check" button sends."""
        headers = {"Origin": self.origin, "X-Requested-With": "vesper-console"}
        return self.request("POST", f"/api/devices/{device}/health-check", headers)

    def first_frame(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """Open a stream; its status and first line (without reading forever)."""
        conn = self._connection()
        all_headers = dict(headers or {})
        if self.cookie:
            all_headers["Cookie"] = self.cookie
        try:
            conn.request("GET", path, headers=all_headers)
            response = conn.getresponse()
            if response.status != 200:
                return response.status, response.read().decode()
            while line := response.fp.readline():
                if line.startswith(b"data:"):
                    return 200, line.decode().strip()
            return 200, ""
        finally:
            conn.close()


@dataclass
class Stack:
    """This test's running web (and ingest), and a peer that hears every command on the broker."""

    base: str
    http: Http
    web: Process
    control: Peer


@pytest.fixture
def stack(
    make_config: Callable[..., Path], start_ingest: Any, start_web: Any, broker: Broker, read_db: Any
) -> Iterator[Callable[..., Stack]]:
    """Start ingest and web with the given config sections; bell-1 and bell-2 are known devices."""
    controls: list[Peer] = []

    def start(**sections: dict[str, Any]) -> Stack:
        cfg = make_config(**sections)
        start_ingest(cfg)
        web = start_web(cfg)
        control = Peer(broker.port, subscribe=["#"])  # every topic: a command to a mangled topic shows too
        controls.append(control)
        device = Peer(broker.port)
        for name in ("bell-1", "bell-2"):
            device.publish(f"vesper/{name}/status/heartbeat", {"fw": "v1"})
        device.close()
        wait_for(lambda: store.device(read_db(), "bell-2"), 15, "the devices to be known")
        base = f"http://{load(cfg).web.bind}"
        return Stack(base, Http(base), web, control)

    yield start
    for control in controls:
        control.close()


def commands(peer: Peer) -> list[tuple[str, bytes]]:
    """Every command the broker carried so far (any topic but status and the events)."""
    with peer._lock:
        received = list(peer.received)
    return [(m.topic, m.payload) for m in received if "/status/" not in m.topic and "/console/" not in m.topic]


def wait_exit(proc: Process, timeout: float = 30) -> int:
    """The process's exit code once it stopped by itself."""
    return proc.proc.wait(timeout)


# --- secure by default -----------------------------------------------------------------------------


def test_gunicorn_refuses_to_listen_beyond_loopback_without_auth(make_config, tmp_path):
    cfg = make_config(web={"bind": f"0.0.0.0:{broker_mod.free_port()}"})
    web = Process(web_args(), cfg, tmp_path / "web-open.log")
    assert wait_exit(web) != 0
    assert REFUSAL in web.output() and "[auth] users" in web.output()
    assert "Booting worker" not in web.output()  # refused before it listened


def test_gunicorn_refuses_a_command_line_bind_beyond_loopback(make_config, tmp_path):
    cfg = make_config()  # loopback in the file, but the command line says otherwise
    web = Process([*web_args(), "--bind", f"0.0.0.0:{broker_mod.free_port()}"], cfg, tmp_path / "web-cli.log")
    assert wait_exit(web) != 0 and REFUSAL in web.output()


def test_with_auth_it_listens_beyond_loopback(make_config, tmp_path):
    port = broker_mod.free_port()
    cfg = make_config(web={"bind": f"0.0.0.0:{port}"}, auth=AUTH)
    web = Process(web_args(), cfg, tmp_path / "web-auth.log")
    try:
        client = Http(f"http://127.0.0.1:{port}")
        wait_for(lambda: _answers(client), 30, "the web to answer")
        assert client.get("/healthz").status == 200
        assert client.get("/api/devices").status == 401
    finally:
        web.stop()


def _answers(client: Http) -> bool:
    try:
        return client.get("/healthz").status == 200
    except OSError:
        return False


# --- authentication --------------------------------------------------------------------------------

API = ["/api/devices", "/api/devices/bell-1", "/api/devices/bell-1/alerts", "/api/events?device=bell-1", "/api/me"]


def test_every_api_route_and_the_stream_need_credentials(stack):
    s = stack(auth=AUTH)
    anonymous = Http(s.base)
    for path in API:
        reply = anonymous.get(path)
        assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer"), path
        assert reply.json()["error"]
    assert anonymous.request("POST", "/api/devices/bell-1/health-check").status == 401
    assert anonymous.first_frame("/events/stream")[0] == 401
    assert anonymous.get("/").status == 302 and anonymous.get("/").headers["Location"] == "/login?next=/"
    assert anonymous.get("/healthz").status == 200

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in API:
        assert anonymous.request("GET", path, bearer).status == 200, path
    assert anonymous.first_frame("/events/stream", bearer) == (200, 'data: {"type": "connected"}')
    assert anonymous.first_frame(f"/events/stream?access_token={TOKEN}")[0] == 401  # never in a URL

    assert s.http.sign_in().status == 303
    for path in API:
        assert s.http.get(path).status == 200, path
    assert s.http.first_frame("/events/stream?device=bell-1") == (200, 'data: {"type": "connected"}')
    assert s.http.get("/").status == 200 and "alice" in s.http.get("/").text


def test_wrong_password_is_refused_without_saying_which_part(stack):
    s = stack(auth=AUTH)
    wrong_password = Http(s.base).sign_in("alice", "not the password")
    time.sleep(0.25)  # the address's lock (0.2 s) passes
    unknown_user = Http(s.base).sign_in("mallory", PASSWORD)
    assert wrong_password.status == unknown_user.status == 401
    assert "Wrong user name or password." in wrong_password.text
    strip = re.compile(r'name="(csrf_token|username)" value="[^"]*"')
    assert strip.sub("", wrong_password.text) == strip.sub("", unknown_user.text)
    assert "sign-in failed for 'alice'" in s.web.output() and "sign-in failed for 'mallory'" in s.web.output()
    assert PASSWORD not in s.web.output() and "not the password" not in s.web.output()


def test_repeated_failures_slow_down(stack):
    s = stack(auth={**AUTH, "login_backoff_s": 1.0})  # long enough that a loaded machine still sees the lock
    client = Http(s.base)
    assert client.sign_in("alice", "wrong").status == 401
    locked = client.sign_in("alice", PASSWORD)
    assert locked.status == 429 and int(locked.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in locked.text
    waits = []
    for _ in range(2):
        started = time.monotonic()
        while (reply := client.sign_in("alice", "wrong")).status == 429:
            time.sleep(0.02)
        assert reply.status == 401
        waits.append(time.monotonic() - started)
    assert waits[1] > waits[0] * 1.5, waits  # 1 s, then 2 s, then 4 s ...


def test_without_auth_a_client_a_proxy_forwards_from_elsewhere_is_refused(stack):
    s = stack()  # loopback, no [auth]: a proxy on this machine (no web.proxy_hops) forwards someone else's request
    forwarded = {"X-Forwarded-For": "203.0.113.9", "Origin": s.base, "X-Requested-With": "vesper-console"}
    for path in ("/api/summary", "/api/devices"):
        reply = s.http.request("GET", path, {"X-Forwarded-For": "203.0.113.9"})
        assert reply.status == 401 and "only callers on this machine" in reply.json()["error"], path
    assert s.http.request("POST", "/api/devices/bell-1/health-check", forwarded).status == 401
    assert s.http.get("/api/summary").status == 200  # the operator on this machine, as before
    assert s.http.button("bell-2").status == 202
    wait_for(lambda: commands(s.control), 15, "the legitimate command")  # one bridge, in order: a refused one was first
    assert commands(s.control) == [("vesper/bell-2/control", b'{"v": 2, "cmd": "system.health"}')]


# --- CSRF and ids, on a real broker ----------------------------------------------------------------

FORGED = [
    {"Origin": "http://evil.example", "X-Requested-With": "vesper-console"},
    {"Origin": "null", "X-Requested-With": "vesper-console"},
    {"Referer": "http://evil.example/", "X-Requested-With": "vesper-console"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
]


@pytest.mark.parametrize("signed_in", [True, False], ids=["auth", "loopback-no-auth"])
def test_forged_health_checks_are_403_and_publish_nothing(stack, signed_in):
    s = stack(auth=AUTH) if signed_in else stack()
    if signed_in:
        assert s.http.sign_in().status == 303
    same_origin = {"Origin": s.base}
    for headers in [*FORGED, same_origin]:  # same origin but neither the CSRF token nor the header
        reply = s.http.request("POST", "/api/devices/bell-1/health-check", headers)
        assert reply.status == 403 and "refused" in reply.json()["error"], headers
    # A cross-site HTML form: form-encoded, no custom header, the browser's Origin.
    form = s.http.request("POST", "/api/devices/bell-1/health-check", {"Origin": "http://evil.example"}, {"a": "b"})
    assert form.status == 403
    assert s.http.button("bell-2").status == 202  # the console's own request, sent after all of the above
    wait_for(lambda: commands(s.control), 15, "the legitimate command")
    time.sleep(0.3)
    assert commands(s.control) == [("vesper/bell-2/control", b'{"v": 2, "cmd": "system.health"}')]


BAD_ID_PATHS = ["%2B", "+", "%23", "a%2Fb", "bell-1%2Fcontrol%2F..", "%00", "", "x" * 65, "x" * 70_000]


def test_bad_ids_are_400_and_publish_nothing(stack):
    s = stack()
    for bad in BAD_ID_PATHS:
        reply = s.http.button(bad)
        if len(bad) > 4000:  # never reaches Python: gunicorn's request-line limit answers 414 URI Too Long
            assert reply.status == 414, (bad[:20], reply.status)
            continue
        assert reply.status == 400, (bad[:20], reply.status, reply.text[:200])
        assert "invalid device id" in reply.json()["error"], bad
    for query in ("device=%2B", "device=a%23b", "device=%00", "device=" + "x" * 65, "after=" + "9" * 40):
        assert s.http.get(f"/api/events?{query}").status == 400, query
        stream_query = query.replace("after=", "last_event_id=")
        assert s.http.first_frame(f"/events/stream?{stream_query}")[0] == 400, query
    assert s.http.button("bell-1").status == 202
    wait_for(lambda: commands(s.control), 15, "the legitimate command")
    time.sleep(0.3)
    assert commands(s.control) == [("vesper/bell-1/control", b'{"v": 2, "cmd": "system.health"}')]


# --- the command limit and the audit log -----------------------------------------------------------


def test_health_checks_are_limited_per_device_and_audited(stack):
    s = stack(auth=AUTH)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert s.http.request("POST", "/api/devices/bell-1/health-check", bearer).status == 202
    for _ in range(5):  # a stuck button or a loop in a script
        again = s.http.request("POST", "/api/devices/bell-1/health-check", bearer)
        assert again.status == 429 and 1 <= int(again.headers["Retry-After"]) <= 10
        assert "retry in" in again.json()["error"]
    s.http.sign_in()
    assert s.http.button("bell-1").status == 429  # per device, whoever asks
    assert s.http.button("bell-2").status == 202
    wait_for(lambda: len(commands(s.control)) >= 2, 15, "two commands")
    time.sleep(0.3)
    assert sorted(topic for topic, _ in commands(s.control)) == ["vesper/bell-1/control", "vesper/bell-2/control"]
    log = s.web.output()
    assert "command system.health to bell-1 by token deploy-bot from 127.0.0.1: sent" in log
    assert "command system.health to bell-2 by user alice from 127.0.0.1: sent" in log
    assert log.count("to bell-1 by token deploy-bot from 127.0.0.1: refused") == 1  # a flood is logged once
    assert "sign-in: user alice from 127.0.0.1" in log


# --- the bridge on a TLS + password broker ---------------------------------------------------------


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path, Path]]:
    """A Mosquitto taking only TLS connections with a valid user and password (certificates made now)."""
    lines, ca, wrong_ca = tls_broker_settings(tmp_path / "pki")
    b = Broker(tmp_path / "mosquitto-tls", broker_mod.free_port())
    b.proc = broker_mod.start(b.directory, b.port, extra=lines)
    yield b, ca, wrong_ca
    b.stop()


class TlsListener:
    """A console-side client over TLS that records the commands it hears."""

    def __init__(self, port: int, ca: Path) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="tls-listener")
        self.client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        self.client.username_pw_set("vesper", "s3cret-pass")
        subscribed = []
        self.client.on_subscribe = lambda *a: subscribed.append(True)
        self.client.on_message = lambda c, u, m: self.received.append(m)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("vesper/+/control", qos=1)
        self.client.loop_start()
        wait_for(lambda: subscribed, 10, "the TLS subscription")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _healthz(client: Http) -> dict[str, Any]:
    return client.get("/healthz").json()


def test_web_bridge_over_tls_with_a_password(tls_broker, make_config, start_web, db_path):
    b, ca, _ = tls_broker
    conn = store.open_store(db_path)
    with store.write(conn):
        store.mark_alive(conn, "bell-1", time.time())
    conn.close()
    cfg = make_config(mqtt={"port": b.port, "tls_ca_file": str(ca), "username": "vesper", "password": "s3cret-pass"})
    web = start_web(cfg)
    client = Http(f"http://{load(cfg).web.bind}")
    wait_for(lambda: _healthz(client)["bridge"]["connected"], 20, f"the bridge over TLS:\n{web.output()}")
    assert "bridge connected to mqtts://127.0.0.1" in web.output()
    listener = TlsListener(b.port, ca)
    try:
        assert client.button("bell-1").status == 202
        wait_for(lambda: listener.received, 15, "the command over TLS")
        assert listener.received[0].topic == "vesper/bell-1/control"
    finally:
        listener.close()


@pytest.mark.parametrize("wrong", ["ca", "password"])
def test_web_refused_by_the_broker_logs_retries_and_still_serves(tls_broker, make_config, start_web, wrong):
    b, ca, wrong_ca = tls_broker
    mqtt_cfg = {"port": b.port, "tls_ca_file": str(ca), "username": "vesper", "password": "s3cret-pass"}
    mqtt_cfg.update({"tls_ca_file": str(wrong_ca)} if wrong == "ca" else {"password": "wrong"})
    cfg = make_config(mqtt=mqtt_cfg)
    web = start_web(cfg)
    if wrong == "ca":
        web.wait_output("certificate verify failed", timeout=30, count=2)  # refused, then refused again on retry
        assert "bridge cannot connect to mqtts://127.0.0.1" in web.output()
    else:
        web.wait_output("refused the bridge", timeout=30, count=2)
        assert "Not authorized" in web.output() or "Bad user name or password" in web.output()
    client = Http(f"http://{load(cfg).web.bind}")
    assert _healthz(client)["bridge"]["connected"] is False
    assert client.get("/api/devices").status == 200
    assert client.button("bell-1").status == 404  # never seen; a known one would get 503
    assert web.proc.poll() is None and "bridge connected" not in web.output()


# --- HTTPS ----------------------------------------------------------------------------------------


def test_session_cookie_is_secure_over_https(make_config, tmp_path):
    pki = tmp_path / "web-pki"
    pki.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=web-ca",
         "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    cert, key = make_server_cert(pki, (pki / "ca.crt", pki / "ca.key"))
    port = broker_mod.free_port()
    cfg = make_config(
        web={"bind": f"127.0.0.1:{port}", "tls_cert_file": str(cert), "tls_key_file": str(key)}, auth=AUTH
    )
    web = Process(web_args(), cfg, tmp_path / "web-https.log")
    try:
        client = Http(f"https://127.0.0.1:{port}", context=ssl.create_default_context(cafile=str(pki / "ca.crt")))
        wait_for(lambda: _answers(client), 30, f"the web over HTTPS:\n{web.output()}")
        reply = client.sign_in()
        assert reply.status == 303
        cookie = reply.headers["Set-Cookie"]
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
        assert client.get("/api/devices").status == 200
    finally:
        web.stop()
