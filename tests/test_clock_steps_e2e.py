"""Clock steps (SPEC §11): the real ingest under libfaketime, its wall clock stepped +600 s and back, a real Mosquitto.

libfaketime fakes only the wall clock here (FAKETIME_DONT_FAKE_MONOTONIC=1): the offset is a file the test
rewrites, read at every call (FAKETIME_NO_CACHE=1). Devices heartbeat each second with a 5 s timeout; none may go
offline at a step, and a silent one must still go offline about 5 s after its last word, in elapsed time.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from shared import store
from tests.conftest import Broker, write_config
from tests.support import Peer, Process, ingest_args, wait_for
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

# Heartbeats every second: a busy machine's stall of the faked ingest (9 s seen beside two hogs) stays inside it.
TIMEOUT = 15.0
FLEET = ["bell-a", "bell-b", "bell-c"]
# How late after its timeout a silent device's device_offline may come. Sweeps run every 0.2 s, but under
# libfaketime (the offset file read at each clock call) on a busy machine the ingest lags by seconds (12 s seen
# beside two CPU hogs). A deadline on the wall clock would be off by the step: 0 s late on +600 (the lower
# bound catches it) or 600 s on -600: this bound still tells them apart.
LATE_S = 25.0
REGRACE = "every device gets a full heartbeat timeout from now"  # vesper_ingest/service.py _regrace


def set_offset(rc: Path, offset: str) -> None:
    """Write libfaketime's offset ("+600", "-600") whole: the ingest never reads a half-written file."""
    new = rc.with_suffix(".new")
    new.write_text(offset + "\n")
    os.replace(new, rc)


@pytest.fixture
def faked(tmp_path: Path) -> Iterator[tuple[Callable[[Path], Process], Path]]:
    """A starter of ingests under libfaketime (stopped at teardown), and the offset file they read."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime is missing: `make test` installs Debian's faketime"
    rc = tmp_path / "faketime.rc"
    set_offset(rc, "+0")
    env = {
        "LD_PRELOAD": found[0],
        "FAKETIME_TIMESTAMP_FILE": str(rc),
        "FAKETIME_NO_CACHE": "1",  # an offset written is read at the next call
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # only the wall clock steps
        "NO_FAKE_STAT": "1",  # file times stay true
    }
    started: list[Process] = []

    def start(config: Path) -> Process:
        started.append(Process(ingest_args(), config, tmp_path / f"ingest-{len(started)}.log", env))
        started[-1].wait_output("connected to", timeout=30)
        return started[-1]

    yield start, rc
    for proc in started:
        proc.stop()


def stored_last_seen(read_db: Callable[[], Any]) -> dict[str, float | None]:
    """Every reported device's last_seen as the ingest stored it (its wall clock's seconds)."""
    return {device_id: seen for device_id, _, seen in store.liveness_all(read_db())}


def offline(peer: Peer) -> list[str]:
    """The devices of every device_offline published so far, in order."""
    return [e["source_id"] for e in peer.unique_events() if e["type"] == "device_offline"]


def beating(peer: Peer, until: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Heartbeat the fleet about each second until `until()` holds; its value (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for device in FLEET:
            peer.publish(f"vesper/{device}/status/heartbeat", {})
        paced = time.monotonic() + 1.0
        while time.monotonic() < paced:
            if value := until():
                return value
            time.sleep(0.05)  # polling within the heartbeats' pace
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; offline so far: {offline(peer)}")


def silent_for_its_timeout(
    peer: Peer, read_db: Callable[[], Any], rc: Path, offset: str, times: int, ingest: Process
) -> tuple[float, float]:
    """`quiet` speaks, the clock steps to `offset`: seconds to its `times`-th device_offline, and the latest allowed.

    That is one timeout and LATE_S after the word, or after the ingest said it restarted every grace: a write or
    its own loop stalled past the stall bound on a busy machine (21 s seen in a full run beside two hogs), and
    then it gives every device a full timeout from that moment (§16, docs/events.md#liveness).
    """
    before = stored_last_seen(read_db).get("quiet")
    regraces = ingest.output().count(REGRACE)
    peer.publish("vesper/quiet/status/heartbeat", {})
    spoke = graced = time.monotonic()
    wait_for(lambda: stored_last_seen(read_db).get("quiet") != before, 10, "quiet's heartbeat to be stored")
    set_offset(rc, offset)

    def quiet_offline() -> bool:
        nonlocal regraces, graced
        if (said := ingest.output().count(REGRACE)) > regraces:
            regraces, graced = said, time.monotonic()  # seen within a poll of its writing
        return offline(peer).count("quiet") >= times

    beating(peer, quiet_offline, f"quiet offline (#{times})")
    return time.monotonic() - spoke, graced - spoke + TIMEOUT + LATE_S


def test_steps_forward_and_back_declare_no_heartbeating_device(
    broker: Broker, tmp_path: Path, db_path: Path, faked, peer: Peer, read_db
) -> None:
    """+600 s, then -600 s, then -600 s again: no device_offline for the fleet, and quiet's comes on time each time."""
    start, rc = faked
    # A busy machine can stall the faked ingest past PostgreSQL's 3 s leader timeout (it then exits for a standby,
    # §10): this test is about clocks, so the lock is held longer.
    config = write_config(
        tmp_path / "vesper.toml", broker.port, db_path,
        liveness={"heartbeat_timeout_s": TIMEOUT}, database={"leader_timeout_s": 60.0},
    )  # fmt: skip
    ingest = start(config)
    beating(peer, lambda: len(stored_last_seen(read_db)) == len(FLEET), "the fleet to be stored")
    assert abs(stored_last_seen(read_db)["bell-a"] - time.time()) < 60  # "+0": the ingest's clock is true so far

    took, latest = silent_for_its_timeout(peer, read_db, rc, "+600", 1, ingest)
    assert TIMEOUT - 0.5 <= took <= latest, f"quiet offline {took:.1f} s after its last word (latest {latest:.1f})"
    # libfaketime reached the ingest's time.time(): what it stores moved 600 s ahead of this process's clock.
    seen = beating(peer, lambda: (s := stored_last_seen(read_db))["bell-a"] > time.time() + 500 and s, "+600 s")
    assert seen["quiet"] > time.time() + 500  # quiet's silence was shifted with the step, not lengthened by it
    ingest.wait_output("the wall clock stepped +600", timeout=10)

    peer.publish("vesper/quiet/status/heartbeat", {})
    peer.wait_events(1, type="device_online", source_id="quiet")
    took, latest = silent_for_its_timeout(peer, read_db, rc, "+0", 2, ingest)  # a step back: the sweeps go on
    assert TIMEOUT - 0.5 <= took <= latest, f"quiet offline {took:.1f} s after its last word (latest {latest:.1f})"
    beating(peer, lambda: abs(stored_last_seen(read_db)["bell-a"] - time.time()) < 60, "the step back to be stored")

    took, latest = silent_for_its_timeout(peer, read_db, rc, "-600", 3, ingest)
    assert TIMEOUT - 0.5 <= took <= latest, f"quiet offline {took:.1f} s after its last word (latest {latest:.1f})"
    beating(peer, lambda: stored_last_seen(read_db)["bell-a"] < time.time() - 500, "-600 s to be stored")
    assert offline(peer) == ["quiet"] * 3
    assert [e["source_id"] for e in peer.unique_events() if e["type"] == "device_online"] == ["quiet"] * 2
    # Both steps back were noticed. At least: libfaketime once read no offset for a moment while 600 s ahead, and
    # the ingest rightly logged that as -600 and +600 (seen on a busy machine; every behaviour above held).
    assert ingest.output().count("the wall clock stepped -600") >= 2


def test_the_run_loop_keeps_sweeping_after_the_wall_clock_steps_back(tmp_path: Path, db_path: Path) -> None:
    """In process, the real run loop, no broker: after a step back of 600 s its sweeps go on every 0.2 s."""
    offset = [0.0]
    config = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db_path)  # no broker: never connected
    ingest = Ingest(config_mod.load(config), clock=lambda: time.time() + offset[0], mono=time.monotonic)
    worker = threading.Thread(target=ingest.run, daemon=True)
    worker.start()
    try:
        wait_for(lambda: ingest.swept is not None, 10, "a first sweep")
        offset[0] = -600.0
        seen: set[float | None] = set()
        wait_for(lambda: seen.add(ingest.swept) or len(seen) > 5, 10, "five sweeps after the step back")
        assert ingest.clock() == pytest.approx(time.time() - 600, abs=5)  # the frame was rebased, once
    finally:
        ingest.stop()
        worker.join(30)
    assert not worker.is_alive()
