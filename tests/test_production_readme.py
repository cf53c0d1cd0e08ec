"""The README's production commands, run as written in a fresh clone (SPEC §15, issue 28).

The block after the README's `<!-- production-commands` marker is run by bash, line for line, in a `git clone` of
this repository's HEAD (committed state, as CI has it), with a fresh machine's PATH (no virtualenv activated),
a real Mosquitto on a free port and a notification channel configured, until the web answers /healthz and
/healthz/pipeline (the ingest is up and the web sees it). Then the web must have printed no Python warning:
gevent's MonkeyPatchWarning comes when the gunicorn master imported Apprise (urllib3 holds ssl) before a worker
patched ssl.

The one thing not run for real is pip, which needs PyPI: the clone's .venv/ is made to stand for what
`make install` leaves (this suite's installed packages through a .pth file, the clone itself importable as the
editable install makes it, the honcho console script pip would write, the stamp), so the README's `make install`
finds nothing to do and the rest runs as written. What `make install` would install is checked from `make -n`:
the runtime dependencies and honcho, never the test extras.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared import config as config_mod
from tests.conftest import Broker
from tests.support import ROOT, wait_for
from vesper_sim.broker import free_port

MARKER = "<!-- production-commands"
FRESH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian root's: no venv on it
READY_S = 60.0  # a busy 2-core machine boots gunicorn and the ingest in a few seconds; this is the bound
STOP_S = 30.0  # honcho sends SIGTERM, then SIGKILL after 5 s
STARTED = re.compile(r"system\s*\| (\w+)\.1 started \(pid=(\d+)\)")


def production_commands(readme: str) -> str:
    """The body of the first fenced block after the marker: the commands a user copies."""
    start = readme.index(MARKER)
    block = re.search(r"^```[a-z]*\n(.*?)^```", readme[start:], re.MULTILINE | re.DOTALL)
    assert block, f"no fenced block after {MARKER!r} in README.md"
    return block.group(1)


def fresh_clone(into: Path) -> Path:
    """`git clone` of this repository's HEAD: what is committed, nothing else."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(into)], check=True, timeout=120)
    return into


def test_the_readme_marks_its_production_commands() -> None:
    """The marked block installs with make and starts the Procfile without activating anything."""
    commands = production_commands((ROOT / "README.md").read_text())
    assert "make install" in commands
    assert ".venv/bin/honcho start" in commands
    assert "activate" not in commands


def test_make_install_installs_what_runs_it_and_no_test_tools(tmp_path: Path) -> None:
    """`make install` and `make run` install the package with honcho only; `make test` adds the test extras."""
    clone = fresh_clone(tmp_path / "clone")

    def pip_lines(target: str) -> list[str]:
        out = subprocess.run(["make", "-n", target], cwd=clone, capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if "pip install" in line and "-e" in line]

    for target in ("install", "run"):
        assert pip_lines(target) == [".venv/bin/python -m pip install --quiet -e '.[procfile]'"], target
    assert any("'.[procfile,test]'" in line for line in pip_lines("test"))


def test_the_production_commands_run_as_written_in_a_fresh_clone(tmp_path: Path, broker: Broker) -> None:
    """make install, then honcho start: the web answers, the ingest is up, and the web prints no warning."""
    clone = fresh_clone(tmp_path / "clone")
    installed_venv(clone)
    bind = f"127.0.0.1:{free_port()}"
    edit_config(clone / "config.toml", broker.port, bind, tmp_path / "vesper.db")
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": FRESH_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        shell = subprocess.Popen(
            ["bash", "-e", "-c", production_commands((ROOT / "README.md").read_text())],
            cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        for path in ("/healthz", "/healthz/pipeline"):
            url = f"http://{bind}{path}"
            wait_for(lambda u=url: answers_ok(u) or shell.poll() is not None, READY_S, f"{url} to answer 200")
            assert shell.poll() is None, log.read_text(errors="replace")
    finally:
        stop(shell, log)
    output = log.read_text(errors="replace")
    web = [line for line in output.splitlines() if " web.1 " in line]
    assert web, output
    assert "MonkeyPatchWarning" not in output
    assert [line for line in web if "Warning" in line or "Traceback" in line] == []
    # Both stopped on honcho's SIGTERM (to each one's process group: the rc is the shell's -15), cleanly.
    assert "vesper_ingest stopped" in output and "Shutting down: Master" in output, output


def installed_venv(clone: Path) -> None:
    """Make clone/.venv what `make install` leaves there, without PyPI (see the module's docstring)."""
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], str(clone)])
    (Path(site) / "vesper-test-installed.pth").write_text("\n".join(ours) + "\n")
    (honcho,) = importlib.metadata.entry_points(group="console_scripts", name="honcho")
    module, function = honcho.value.split(":")
    script = venv / "bin" / "honcho"
    script.write_text(f"#!{python}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
    script.chmod(0o755)
    past = time.time() - 60  # the clone's files older than the stamp, as after a real install
    os.utime(clone / "pyproject.toml", (past, past))
    (venv / ".installed-stamp").touch()
    up_to_date = subprocess.run(["make", "-q", "install"], cwd=clone, env={"PATH": FRESH_PATH}, check=False)
    assert up_to_date.returncode == 0, "make install would run pip: the stamp the test writes is not the Makefile's"


def edit_config(path: Path, mqtt_port: int, bind: str, db: Path) -> None:
    """config.toml as an operator edits it: the broker, the address, the database, and a notification channel."""
    path.write_text(
        f'[mqtt]\nport = {mqtt_port}\n\n[database]\npath = "{db}"\n\n[web]\nbind = "{bind}"\n\n'
        '[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/"\n'
    )
    config_mod.load(path)  # a bad file fails here, not in the processes


def answers_ok(url: str) -> bool:
    """True once url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(shell: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM to the shell and honcho (honcho stops its processes); SIGKILL whatever is left after STOP_S."""
    children = {int(pid) for _, pid in STARTED.findall(log.read_text(errors="replace"))}
    with contextlib.suppress(ProcessLookupError):
        os.killpg(shell.pid, signal.SIGTERM)
    try:
        wait_for(lambda: not any(alive(pid) for pid in children) and shell.poll() is not None, STOP_S, "honcho to stop")
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(STOP_S)


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (honcho reaps its own; after it, init does)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
