"""Sign-in cannot be skipped by how the socket is opened: the Procfile's web under systemd socket activation.

The test plays systemd: it opens the listening socket, hands it to gunicorn as fd 3 with LISTEN_FDS=1 and
LISTEN_PID set to gunicorn's own pid (a tiny shim sets it, then execs gunicorn in the same process), and
gunicorn listens there, ignoring web.bind, which still says 127.0.0.1.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tests.support import ROOT, wait_for
from vesper_sim.broker import free_port
from vesper_web.passwd import new_token

TOKEN, TOKEN_LINE = new_token("deploy-bot")
GUNICORN = str(Path(sys.executable).parent / "gunicorn")  # the venv's, as `honcho start` runs the Procfile
PROCFILE_WEB = [GUNICORN, "--config", "gunicorn.conf.py", "vesper_web:create_app()"]
# fd N -> fd 3, LISTEN_FDS=1, LISTEN_PID=this pid, then exec: gunicorn keeps the pid, so the pid check passes.
SHIM = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
REFUSAL = "is not a loopback address and no authentication is configured: refusing to start"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, as a proxy in front (nginx's proxy_pass http://unix:...) would speak it."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        """Connect to the socket file instead of a host and port."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection: the status and the body."""
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket's path must fit in 108 bytes, pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="vesper-sa-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def activated(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start the Procfile's web on a socket it inherits as systemd passes it; every one started is killed after."""
    started: list[tuple[subprocess.Popen[bytes], socket.socket]] = []

    def start(listener: socket.socket, auth: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
        sections: dict[str, dict[str, Any]] = {"auth": auth} if auth else {}
        config = write_config(tmp_path / "vesper.toml", free_port(), tmp_path / "vesper.db", **sections)
        fd = listener.fileno()
        env = {"PATH": "/usr/bin:/bin", "VESPER_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        with open(tmp_path / "web.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", SHIM, str(fd), *PROCFILE_WEB],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,),
            )  # fmt: skip
        started.append((proc, listener))
        return proc

    yield start
    for proc, listener in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        listener.close()


def output(tmp_path: Path) -> str:
    """What the web printed."""
    return (tmp_path / "web.log").read_text(errors="replace")


def wait_serving(web: subprocess.Popen[bytes], path: str, tmp_path: Path) -> None:
    """Wait until the web answers /healthz on the unix socket (failing at once if it exited)."""

    def healthy() -> bool:
        assert web.poll() is None, output(tmp_path)
        return get(UnixHTTPConnection(path), "/healthz")[0] == 200

    wait_for(healthy, 60, "the web to answer on the inherited socket")


def unix_listener(directory: Path) -> tuple[socket.socket, str]:
    """A listening unix socket, as a systemd .socket unit with ListenStream=/run/vesper/web.sock makes one."""
    path = str(directory / "web.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    return listener, path


def tcp_listener(host: str) -> socket.socket:
    """A listening TCP socket, as ListenStream=HOST:PORT makes one."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(16)
    return listener


def test_an_inherited_unix_socket_without_auth_refuses_to_start(activated, short_dir, tmp_path):
    listener, path = unix_listener(short_dir)
    web = activated(listener)
    assert web.wait(60) != 0, output(tmp_path)
    log = output(tmp_path)
    assert f"vesper_web: the socket from systemd (LISTEN_FDS) unix:{path} {REFUSAL}" in log, log
    assert "Booting worker" not in log  # no worker ever served a request
    assert Path(path).exists()  # systemd's socket is left for systemd


def test_an_inherited_socket_on_every_interface_without_auth_refuses_to_start(activated, tmp_path):
    listener = tcp_listener("0.0.0.0")
    web = activated(listener)
    assert web.wait(60) != 0, output(tmp_path)
    port = listener.getsockname()[1]
    assert f"the socket from systemd (LISTEN_FDS) 0.0.0.0:{port} {REFUSAL}" in output(tmp_path)
    assert "Booting worker" not in output(tmp_path)


def test_with_auth_an_inherited_unix_socket_serves_signed_in_callers_only(activated, short_dir, tmp_path):
    listener, path = unix_listener(short_dir)
    wait_serving(activated(listener, auth={"tokens": [TOKEN_LINE]}), path, tmp_path)
    assert f"Listening at: unix:{path}" in output(tmp_path)  # there, not on web.bind
    status, body = get(UnixHTTPConnection(path), "/api/summary")
    assert status == 401 and b"error" in body
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert get(UnixHTTPConnection(path), "/api/summary", bearer)[0] == 200
    assert get(UnixHTTPConnection(path), "/api/devices", bearer)[0] == 200


def test_an_inherited_loopback_socket_without_auth_serves_as_before(activated, tmp_path):
    listener = tcp_listener("127.0.0.1")
    web = activated(listener)
    port = listener.getsockname()[1]

    def healthy() -> bool:
        assert web.poll() is None, output(tmp_path)
        try:
            return get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "/healthz")[0] == 200
        except OSError:
            return False

    wait_for(healthy, 60, "the web to answer on the inherited loopback socket")
    assert get(http.client.HTTPConnection("127.0.0.1", port, timeout=30), "/api/summary")[0] == 200


def test_a_reload_that_empties_auth_stops_the_web(activated, short_dir, tmp_path):
    """SIGHUP re-reads the config: with [auth] emptied, new workers refuse the socket and the master stops."""
    listener, path = unix_listener(short_dir)
    web = activated(listener, auth={"tokens": [TOKEN_LINE]})
    wait_serving(web, path, tmp_path)
    config = tmp_path / "vesper.toml"
    config.write_text(config.read_text().split("[auth]")[0])  # the last section; web.bind stays as it was
    web.send_signal(signal.SIGHUP)
    assert web.wait(60) != 0, output(tmp_path)
    assert f"vesper_web: the socket from systemd (LISTEN_FDS) unix:{path} {REFUSAL}" in output(tmp_path)
