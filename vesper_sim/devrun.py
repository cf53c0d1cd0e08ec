"""`make run`: a local broker if none listens, every Procfile process, and a demo fleet."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gunicorn.util import is_ipv6, parse_address

from shared.config import DEFAULT_PATH, ENV_VAR, Config, ConfigError, load
from vesper_sim import broker

ROOT = Path(__file__).resolve().parent.parent
DEMO_DEVICES = 12
DEMO_SPEED = 3.0
CONSOLE_TIMEOUT_S = 60.0
POLL_S = 0.2


class Stop(Exception):
    """`make run` cannot go on; the message is the one line the operator reads."""


def procfile(path: Path) -> dict[str, str]:
    """The `name: command` lines of a Procfile."""
    entries = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def config_file() -> str:
    """The settings file in use, as the operator would name it."""
    return os.environ.get(ENV_VAR) or DEFAULT_PATH


def web_address(bind: str) -> tuple[str, int] | None:
    """The (host, port) gunicorn listens on for web.bind; None for a unix socket or an inherited descriptor."""
    try:
        address = parse_address(bind)
    except RuntimeError as exc:
        raise Stop(f"web.bind {bind!r}: {exc}") from None
    return address if isinstance(address, tuple) else None


def bind_problem(address: tuple[str, int]) -> str | None:
    """Why gunicorn could not listen on address (tried as gunicorn does: SO_REUSEADDR, bind, listen), or None."""
    host, port = address
    with socket.socket(socket.AF_INET6 if is_ipv6(host) else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(1)
        except OSError as exc:
            change = f"set web.bind in {config_file()} to a free address"
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is already in use by another program: {change}"
            return f"cannot listen on {host}:{port} ({exc.strerror or exc}): {change}"
    return None


def console_url(address: tuple[str, int], tls: bool) -> str:
    """Where a browser on this machine reaches the console bound at address."""
    host, port = address
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"{'https' if tls else 'http'}://{f'[{host}]' if is_ipv6(host) else host}:{port}/"


def answers(url: str) -> bool:
    """True if url answers 2xx now (a certificate is not checked: this is our own process on this machine)."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=1, context=context):
            return True
    except OSError:
        return False


def listening_inodes(port: int) -> set[str] | None:
    """Inodes of the sockets that listen on TCP port (Linux's /proc/net); None where there is no /proc."""
    tables = [table for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")) if table.exists()]
    if not tables:
        return None
    inodes = set()
    for table in tables:
        for row in table.read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def holds_listener(pid: int, port: int) -> bool:
    """True if process pid holds a socket listening on port (without /proc, its being alive is all we can tell)."""
    inodes = listening_inodes(port)
    if inodes is None:
        return True
    held = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # a descriptor closed while we look
                held.add(os.readlink(fd))
    return any(f"socket:[{inode}]" in held for inode in inodes)


class Run:
    """The processes `make run` started, in start order, and whether a signal asked it to stop."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        self.env["PYTHONUNBUFFERED"] = "1"

    def request_stop(self, *_: object) -> None:
        """Signal handler: stop everything at the next look."""
        self.stopping = True

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Start one child in the repository."""
        try:
            child = subprocess.Popen(args, cwd=ROOT, env=self.env)
        except OSError as exc:
            raise Stop(f"cannot start {name} ({' '.join(args)}): {exc}") from None
        self.children[name] = child
        return child

    def check(self) -> None:
        """Raise Stop if a child has exited on its own (an exit code 0 included: nothing here ends by itself)."""
        for name, child in self.children.items():
            if child.poll() is not None:
                raise Stop(f"{name} exited with code {child.returncode}; stopping everything")

    def wait(self) -> None:
        """Until a signal asks to stop; Stop if a child exits first."""
        while not self.stopping:
            self.check()
            time.sleep(POLL_S)

    def stop_all(self) -> None:
        """SIGTERM in reverse start order, then wait; kill what does not stop in 15 s."""
        for child in reversed(self.children.values()):
            if child.poll() is None:
                child.terminate()
        for child in self.children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def use_or_start_broker(cfg: Config, run: Run) -> None:
    """Use the MQTT broker on the configured port; start a local mosquitto there if nothing listens."""
    where = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
    if broker.listening(cfg.mqtt.host, cfg.mqtt.port):
        if not broker.answers_mqtt(cfg.mqtt):
            raise Stop(
                f"something on {where} is not an MQTT broker: set mqtt.port in {config_file()} "
                "to your broker's port, or to a free port for a local one"
            )
        print(f"vesper: using the MQTT broker already listening on {where}")
        return
    print(f"vesper: starting a local mosquitto on 127.0.0.1:{cfg.mqtt.port} (settings: vesper_sim/mosquitto.conf)")
    try:
        run.children["mosquitto"] = broker.start(ROOT / "var" / "mosquitto", cfg.mqtt.port)
    except (OSError, RuntimeError) as exc:
        raise Stop(str(exc)) from None


def await_console(run: Run, web: subprocess.Popen[bytes], address: tuple[str, int], url: str) -> bool:
    """True once the web we started answers /healthz from its own socket; False if a signal came first."""
    deadline = time.monotonic() + CONSOLE_TIMEOUT_S
    while not run.stopping:
        if web.poll() is not None:
            # It may have lost the port to a program that took it after our check.
            raise Stop(bind_problem(address) or f"the web exited (code {web.returncode}) before the console answered")
        run.check()
        if answers(url + "healthz") and holds_listener(web.pid, address[1]) and web.poll() is None:
            return True
        if time.monotonic() > deadline:
            raise Stop(f"the console we started did not answer on {url} within {CONSOLE_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)
    return False


def bring_up(cfg: Config, run: Run) -> None:
    """Check the ports, start everything, and say "up" only once our console answers."""
    commands = procfile(ROOT / "Procfile")
    address = web_address(cfg.web.bind) if "web" in commands else None
    if address and (problem := bind_problem(address)):
        raise Stop(problem)
    use_or_start_broker(cfg, run)
    for name, command in commands.items():
        print(f"vesper: starting {name}: {command}")
        run.start(name, shlex.split(command))
    sim = [sys.executable, "-m", "vesper_sim", "--devices", str(DEMO_DEVICES), "--speed", str(DEMO_SPEED)]
    run.start("simulator", sim)
    if "web" not in commands:
        return
    if address is None:
        print(f"vesper: the web listens on {cfg.web.bind}; make run checks only a host:port bind", flush=True)
        return
    url = console_url(address, bool(cfg.web.tls_cert_file))
    if await_console(run, run.children["web"], address, url):
        print(f"\n  Vesper Console is up: {url}", flush=True)
        print(f"  (a demo fleet of {DEMO_DEVICES} devices; Ctrl-C stops everything)\n", flush=True)


def main() -> int:
    """Start everything, print the console's address, stop everything on Ctrl-C or when one part stops."""
    try:
        cfg = load()
    except ConfigError as exc:
        print(f"vesper: {exc}", file=sys.stderr)
        return 2
    run = Run()
    signal.signal(signal.SIGINT, run.request_stop)
    signal.signal(signal.SIGTERM, run.request_stop)
    try:
        bring_up(cfg, run)
        run.wait()
    except Stop as exc:
        print(f"vesper: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        run.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
