"""`make run` never claims what it did not do: "up" only for its own console, one line for a port in use."""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from shared.config import MqttConfig
from tests.conftest import Broker
from tests.support import ROOT, wait_for
from vesper_sim import broker as broker_mod
from vesper_sim import devrun

UP = "Vesper Console is up"
START_S = 90.0  # two shared cores and a full suite beside us: gunicorn, the ingest and the simulator all start


class DevRun:
    """`python -m vesper_sim.devrun` in its own process group, its output in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        env = {**os.environ, "VESPER_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            args = [sys.executable, "-m", "vesper_sim.devrun"]
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        """Everything printed so far."""
        return self.log.read_text(errors="replace")

    def exit_code(self, timeout: float = START_S) -> int:
        """Wait for devrun to exit on its own."""
        return self.proc.wait(timeout)

    def group(self) -> list[int]:
        """The live (not zombie) processes of devrun's process group: it and everything it started."""
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _ppid, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
            except OSError:
                continue  # gone while we looked
            if int(pgrp) == self.proc.pid and state != "Z":
                members.append(int(stat.parent.name))
        return members

    def kill_all(self) -> None:
        """SIGKILL whatever of the group is left, and reap devrun."""
        if self.group():
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


StartDevRun = Callable[[Path], DevRun]
Serve = Callable[[int], subprocess.Popen[bytes]]


@pytest.fixture
def start_devrun(tmp_path: Path) -> Iterator[StartDevRun]:
    """Start devrun with a config; every process it left is killed after the test."""
    runs: list[DevRun] = []

    def start(config: Path) -> DevRun:
        runs.append(DevRun(config, tmp_path / f"devrun-{len(runs)}.log"))
        return runs[-1]

    yield start
    for run in runs:
        run.kill_all()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Serve]:
    """Another program: Python's HTTP server on a port, answering 200 on /healthz."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "healthz").write_text("not vesper\n")
    servers: list[subprocess.Popen[bytes]] = []

    def serve(port: int) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", "site", str(port)]
        servers.append(subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: broker_mod.listening("127.0.0.1", port), 30, f"the HTTP server on port {port}")
        return servers[-1]

    yield serve
    for server in servers:
        server.kill()
        server.wait()


def config(tmp_path: Path, mqtt_port: int, web_port: int, host: str = "127.0.0.1") -> Path:
    """A devrun config on these ports, with the database in tmp_path."""
    path = tmp_path / "vesper.toml"
    path.write_text(
        f'[mqtt]\nport = {mqtt_port}\nclient_id = "vesper-ingest-{mqtt_port}"\n'
        f'[web]\nbind = "{host}:{web_port}"\n[database]\npath = "{tmp_path / "vesper.db"}"\n'
    )
    return path


def refused(run: DevRun) -> list[str]:
    """devrun's output once it exited non-zero without ever saying "up"."""
    assert run.exit_code() != 0, run.output()
    assert UP not in run.output()
    return [line for line in run.output().splitlines() if line.startswith("vesper:")]


def test_a_web_port_in_use_stops_it_with_one_line(
    tmp_path: Path, broker: Broker, http_server: Serve, start_devrun: StartDevRun
) -> None:
    """Another program on web.bind's port: one line naming the port and web.bind, nothing started."""
    port = broker_mod.free_port()
    http_server(port)
    run = start_devrun(config(tmp_path, broker.port, port))
    assert refused(run) == [
        f"vesper: port {port} is already in use by another program: set web.bind in {tmp_path / 'vesper.toml'} "
        "to a free address"
    ]
    assert len(run.output().splitlines()) == 1  # that line is all it printed
    assert run.group() == []


@pytest.mark.parametrize("kind", ["http", "silent tcp"])
def test_a_non_broker_on_the_mqtt_port_stops_it_with_one_line(
    tmp_path: Path, kind: str, http_server: Serve, start_devrun: StartDevRun
) -> None:
    """Something that does not answer an MQTT CONNECT on mqtt.port: one line naming it and mqtt.port."""
    with socket.socket() as listener:
        if kind == "http":
            port = broker_mod.free_port()
            http_server(port)
        else:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
        run = start_devrun(config(tmp_path, port, broker_mod.free_port()))
        (line,) = refused(run)
    assert line.startswith(f"vesper: something on 127.0.0.1:{port} is not an MQTT broker: set mqtt.port in ")
    assert run.output().splitlines() == [line]
    assert run.group() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_means_its_own_console_answers_and_a_signal_stops_everything(
    tmp_path: Path, broker: Broker, sig: signal.Signals, start_devrun: StartDevRun
) -> None:
    """A normal start says "up" with the address that answers; a signal stops devrun and every child."""
    port = broker_mod.free_port()
    run = start_devrun(config(tmp_path, broker.port, port))
    wait_for(lambda: UP in run.output() or run.proc.poll() is not None, START_S, "devrun to say up")
    assert f"{UP}: http://127.0.0.1:{port}/" in run.output()
    assert f"using the MQTT broker already listening on 127.0.0.1:{broker.port}" in run.output()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
    assert devrun.holds_listener(run.proc.pid, port) is False  # the web child holds it, not devrun
    assert len(run.group()) >= 4  # devrun, the ingest, gunicorn and its worker, the simulator
    os.kill(run.proc.pid, sig)
    assert run.exit_code(60) == 0
    wait_for(lambda: run.group() == [], 30, f"every child of devrun to exit; left: {run.group()}")


def test_a_web_that_exits_before_answering_is_never_up(
    tmp_path: Path, broker: Broker, start_devrun: StartDevRun
) -> None:
    """The web refuses to start (0.0.0.0 without sign-in): devrun says so in one line, stops the rest, never "up"."""
    run = start_devrun(config(tmp_path, broker.port, broker_mod.free_port(), host="0.0.0.0"))
    assert "vesper: the web exited (code 2) before the console answered" in refused(run)
    wait_for(lambda: run.group() == [], 30, f"every child of devrun to exit; left: {run.group()}")


class NotVesper(BaseHTTPRequestHandler):
    """Another program's HTTP server: 200 on every GET."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        """Answer 200 "not vesper"."""
        self.send_response(200)
        self.send_header("Content-Length", "11")
        self.end_headers()
        self.wfile.write(b"not vesper\n")

    def log_message(self, *args: object) -> None:
        """Quiet."""


class Listener(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Binds and listens at once (HTTPServer looks up its name in between), with SO_REUSEADDR like gunicorn."""

    allow_reuse_address = True
    daemon_threads = True


def test_a_port_taken_after_the_check_is_never_up(tmp_path: Path, broker: Broker, start_devrun: StartDevRun) -> None:
    """Another program answering /healthz takes web.bind's port while gunicorn starts: never "up", the port named."""
    port = broker_mod.free_port()
    run = start_devrun(config(tmp_path, broker.port, port))
    wait_for(lambda: "vesper: starting web" in run.output(), START_S, "devrun to start the web")
    try:
        server = Listener(("127.0.0.1", port), NotVesper)
    except OSError:
        pytest.skip("gunicorn listened before the test could")  # the race this test needs was lost
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert refused(run)[-1].startswith(f"vesper: port {port} is already in use by another program: set web.bind")
        wait_for(lambda: run.group() == [], 30, f"every child of devrun to exit; left: {run.group()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.read() == b"not vesper\n"  # it answered all along: devrun did not take it for its own
    finally:
        server.shutdown()
        server.server_close()


def test_answers_mqtt_only_for_a_broker(broker: Broker) -> None:
    """A CONNACK within the timeout is a broker; a silent listener and a closed port are not."""
    assert broker_mod.answers_mqtt(MqttConfig(port=broker.port))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        assert not broker_mod.answers_mqtt(MqttConfig(port=port), timeout=0.5)
    assert not broker_mod.answers_mqtt(MqttConfig(port=port), timeout=0.5)


def test_bind_problem_and_holder(http_server: Serve) -> None:
    """A held port is named with web.bind; holds_listener tells which process holds it."""
    port = broker_mod.free_port()
    assert devrun.bind_problem(("127.0.0.1", port)) is None
    server = http_server(port)
    assert f"port {port} is already in use" in (devrun.bind_problem(("127.0.0.1", port)) or "")
    assert devrun.holds_listener(server.pid, port)
    assert not devrun.holds_listener(os.getpid(), port)


@pytest.mark.parametrize(
    ("address", "tls", "url"),
    [
        (("127.0.0.1", 8000), False, "http://127.0.0.1:8000/"),
        (("0.0.0.0", 8000), False, "http://127.0.0.1:8000/"),
        (("localhost", 8443), True, "https://localhost:8443/"),
        (("::1", 8000), False, "http://[::1]:8000/"),
        (("::", 8000), False, "http://[::1]:8000/"),
    ],
)
def test_console_url(address: tuple[str, int], tls: bool, url: str) -> None:
    """The address a browser on this machine uses for each bind."""
    assert devrun.console_url(address, tls) == url


@pytest.mark.parametrize(
    ("bind", "address"),
    [("127.0.0.1:8000", ("127.0.0.1", 8000)), ("[::1]:9000", ("::1", 9000)), ("unix:/run/vesper.sock", None)],
)
def test_web_address(bind: str, address: tuple[str, int] | None) -> None:
    """gunicorn's reading of web.bind: a unix socket is not checked."""
    assert devrun.web_address(bind) == address
