"""gunicorn settings for the web process (Procfile `web`): gevent workers, one MQTT bridge each."""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
import threading
import time
from typing import Any

from shared.config import Config, ConfigError, load
from shared.exposure import exposure_error


def _load_and_check() -> tuple[Config | None, str | None]:
    """The config, and why the web cannot start with it (a bad key, an unusable SQLite file) or None."""
    from shared.store.schema import StoreCorrupt, open_store

    try:
        cfg = load()  # $VESPER_CONFIG, else ./config.toml
    except ConfigError as exc:
        return None, str(exc)
    if not cfg.database.url:
        try:
            open_store(cfg.database.path).close()
        except StoreCorrupt as exc:
            return cfg, str(exc)
        except Exception:  # any other failure is left to the workers, which say it in full
            pass
    return cfg, None


def _read_in_child() -> tuple[Config | None, str | None]:
    """_load_and_check() in a forked child, its answer pickled back: the master imports neither of two things.

    The store: psycopg_pool binds threading's locks at import. Apprise: with a channel configured, loading the
    config checks its URL in Apprise, whose urllib3 holds ssl's classes. A gevent worker inherits the master's
    modules and patches threading and ssl only as it boots; whatever holds them by then stays unpatched
    (gevent's MonkeyPatchWarning, "Monkey-patching ssl after ssl has already been imported").
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            try:
                answer = _load_and_check()
            except Exception as exc:  # said by the master, which exits with it
                answer = (None, f"cannot read the configuration: {exc!r}")
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(answer, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return pickle.loads(answer) if answer else (None, "cannot read the configuration (its reader died)")


_cfg, _refusal = _read_in_child()
if _cfg is None or _refusal:
    print(f"vesper_web: {_refusal}", file=sys.stderr)
    raise SystemExit(2)

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)

bind = [_cfg.web.bind]
workers = _cfg.web.workers
worker_class = "gevent"
worker_connections = max(1000, _cfg.web.max_streams + 100)  # at the cap even a JSON request waits
preload_app = False  # a bridge started before the fork is dead in the workers
graceful_timeout = 5
timeout = 30
keepalive = 5
accesslog = None
control_socket_disable = True  # gunicorn 27 would otherwise create ~/.gunicorn/gunicorn.ctl
limit_request_line = 4094  # a longer URL (a 70,000-character "device id") is a 414 before any Python runs
limit_request_fields = 100
limit_request_field_size = 8190
if _cfg.web.tls_cert_file:
    certfile = _cfg.web.tls_cert_file
    keyfile = _cfg.web.tls_key_file

SHUTDOWN_POLL_S = 0.5


def on_starting(server: Any) -> None:
    """Refuse to listen beyond loopback without sign-in, whatever bind (config or --bind) gunicorn was given."""
    refusal = exposure_error(_cfg, server.cfg.bind)
    if refusal:
        print(f"vesper_web: {refusal}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def listening_on(listener: Any) -> str:
    """Where a listening socket really is, written as a bind: "127.0.0.1:8000", "[::1]:8000", "unix:/run/x.sock"."""
    with socket.socket(fileno=os.dup(listener.fileno())) as probe:  # the kernel's family, not the object's
        family, name = probe.family, probe.getsockname()
    if family == socket.AF_INET:
        return f"{name[0]}:{name[1]}"
    if family == socket.AF_INET6:
        return f"[{name[0]}]:{name[1]}"
    if family == socket.AF_UNIX:  # any local user or a proxy may connect: not provably loopback
        return "unix:" + (name.decode(errors="replace") if isinstance(name, bytes) else name).replace("\0", "@")
    return f"fd://{listener.fileno()}"


def _exposure(listeners: Any, systemd: bool) -> str | None:
    """The refusal for these sockets, or None: the bind is a wish, getsockname() is where gunicorn listens."""
    what = "the socket from systemd (LISTEN_FDS)" if systemd else "the listening socket"
    return exposure_error(_cfg, [listening_on(listener) for listener in listeners], what)


def when_ready(server: Any) -> None:
    """Check the sockets themselves: systemd's (LISTEN_FDS) and an upgraded master's are not in any bind."""
    refusal = _exposure(server.LISTENERS, server.systemd)
    if refusal:
        print(f"vesper_web: {refusal}", file=sys.stderr, flush=True)
        server.halt("listening beyond loopback without sign-in", exit_status=2)


def post_fork(server: Any, worker: Any) -> None:
    """Check again in each worker: with reuse_port it binds its own sockets, and a reload may change them."""
    refusal = _exposure(worker.sockets, server.systemd)
    if refusal:
        print(f"vesper_web: {refusal}", file=sys.stderr, flush=True)
        sys.exit(3)  # gunicorn's WORKER_BOOT_ERROR: the master halts instead of forking another


def post_worker_init(worker: Any) -> None:
    """Start this worker's bridge (after gevent's monkey patching: its loop runs as a greenlet)."""
    from vesper_web.bridge import start_for_app

    start_for_app(worker.wsgi)
    threading.Thread(target=_end_streams_on_exit, args=(worker,), daemon=True, name="stream-closer").start()


def _end_streams_on_exit(worker: Any) -> None:
    """On SIGTERM, end open streams at once instead of after graceful_timeout; clients resume by id."""
    while worker.alive:
        time.sleep(SHUTDOWN_POLL_S)
    worker.wsgi.extensions["vesper_hub"].close_all()


def worker_exit(server: Any, worker: Any) -> None:
    """Disconnect this worker's bridge cleanly."""
    from vesper_web.bridge import stop_for_app

    stop_for_app(getattr(worker, "wsgi", None))
