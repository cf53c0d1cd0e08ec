"""The ingest in-process (docs/events.md#liveness): a fake clock, a real SQLite file, no broker, threads or sleeps."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import ConnectFlags
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from shared import config as config_mod
from shared import store
from shared.notify_config import Channel
from tests.conftest import write_config
from tests.support import FakeClock
from vesper_ingest.notify.delivery import ChannelWorker
from vesper_ingest.service import Inbound, Ingest
from vesper_sim import broker as broker_mod

T0 = 1_700_000_000.0
TIMEOUT = 10.0
EPSILON = 0.001
CRITICAL = b'{"subsystem":"Audio","state":"CRITICAL","msg":"x"}'
CLEARED = b'{"subsystem":"Audio","state":"CLEARED"}'


@pytest.fixture
def cfg(tmp_path: Path, db_path: Path) -> config_mod.Config:
    """A config read from TOML: a port nothing listens on, the test's SQLite file, a 10 s timeout."""
    toml = write_config(
        tmp_path / "vesper.toml", broker_mod.free_port(), db_path, liveness={"heartbeat_timeout_s": TIMEOUT}
    )
    return config_mod.load(toml)


@pytest.fixture
def start(cfg: config_mod.Config, clock: FakeClock) -> Iterator[Callable[[], Ingest]]:
    """Build an Ingest (not connected) on the test's database; each one built is closed at teardown."""
    built: list[Ingest] = []

    def build() -> Ingest:
        built.append(Ingest(cfg, clock=clock))
        return built[-1]

    yield build
    for ingest in built:
        close(ingest)


@pytest.fixture
def ingest(start: Callable[[], Ingest]) -> Ingest:
    """One Ingest, constructed but not yet connected."""
    return start()


def close(ingest: Ingest) -> None:
    """What Ingest.run's finally does once the paho loop was never started: close the database (idempotent)."""
    ingest.conn.close()


def message(
    ingest: Ingest,
    device: str,
    kind: str,
    payload: bytes = b"{}",
    *,
    retained: bool = False,
    mid: int = 1,
    qos: int = 1,
    dup: bool = False,
) -> Inbound:
    """A message on vesper/{device}/status/{kind}, received on the ingest's current connection."""
    return Inbound(f"vesper/{device}/status/{kind}", payload, retained, mid, qos, ingest.generation, dup)


def heartbeat(ingest: Ingest, device: str = "bell-1", *, retained: bool = False) -> Inbound:
    """A heartbeat of `device` (retained: the broker's copy delivered at subscribe time)."""
    return message(ingest, device, "heartbeat", b'{"uptime": 5}', retained=retained)


def sweep_at(ingest: Ingest, clock: FakeClock, now: float) -> None:
    """Set the clock to `now` and run the liveness sweep there, as Ingest.run would."""
    clock.now = now
    ingest.sweep(now)


def events(db: Path) -> list[dict[str, Any]]:
    """Every stored event, oldest first."""
    conn = store.connect(db, readonly=True)
    try:
        return store.events_after(conn, 0)
    finally:
        conn.close()


def types(db: Path) -> list[str]:
    """The type of every stored event, oldest first."""
    return [e["type"] for e in events(db)]


def device(db: Path, device_id: str = "bell-1") -> dict[str, Any]:
    """One device as the API sees it."""
    conn = store.connect(db, readonly=True)
    try:
        found = store.device(conn, device_id)
    finally:
        conn.close()
    assert found is not None, f"{device_id} is not known"
    return found


def alerts(db: Path, device_id: str = "bell-1") -> list[dict[str, Any]]:
    """A device's active alert set."""
    conn = store.connect(db, readonly=True)
    try:
        return store.alerts(conn, device_id)
    finally:
        conn.close()


def counters(db: Path) -> dict[str, int]:
    """The counters the sweep saved."""
    conn = store.connect(db, readonly=True)
    try:
        return store.counters(conn)
    finally:
        conn.close()


# --- liveness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("down_s", [5.0, 100.0, 86_400.0])
def test_grace_after_start(start: Callable[[], Ingest], clock: FakeClock, db_path: Path, down_s: float) -> None:
    """A device heard before the ingest started is offline only from connected_since + timeout, once."""
    earlier = start()
    earlier.connected()
    earlier.process([heartbeat(earlier)])  # at T0, then that ingest stops for down_s
    close(earlier)
    clock.advance(down_s)
    ingest = start()
    ingest.connected()
    since = ingest.connected_since
    assert since == clock()
    for now in (since, since + TIMEOUT / 2, since + TIMEOUT - EPSILON):
        sweep_at(ingest, clock, now)
        assert types(db_path) == [] and device(db_path)["liveness"] == "online"
    sweep_at(ingest, clock, since + TIMEOUT)
    assert types(db_path) == ["device_offline"] and device(db_path)["liveness"] == "offline"
    assert events(db_path)[0]["payload"] == {"last_seen": device(db_path)["last_seen"]}
    sweep_at(ingest, clock, since + TIMEOUT + 60)
    assert types(db_path) == ["device_offline"]


def test_grace_after_reconnect(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """After a broker outage longer than the timeout, every device gets a new full timeout of grace."""
    ingest.connected()
    ingest.process([heartbeat(ingest)])
    clock.advance(1)
    ingest.disconnected()
    clock.advance(10 * TIMEOUT)  # the outage: the device is silent far past its timeout
    ingest.connected(session_present=True)
    assert ingest.generation == 2
    since = clock()
    for now in (since, since + TIMEOUT - EPSILON):
        sweep_at(ingest, clock, now)
        assert types(db_path) == [] and device(db_path)["liveness"] == "online"
    sweep_at(ingest, clock, since + TIMEOUT)
    assert types(db_path) == ["device_offline"]


def test_connected_is_said_once_the_broker_granted_the_subscriptions(ingest: Ingest, caplog) -> None:
    """A new session says "connected" at the SUBACK, so a device heard from then on is taken; a refusal is named."""
    caplog.set_level(logging.INFO, "vesper_ingest")
    ingest._on_connect(ingest.client, None, ConnectFlags(False), ReasonCode(PacketTypes.CONNACK, "Success"), None)
    assert ingest.connected_since is not None and "connected to" not in caplog.text
    refused, granted = (ReasonCode(PacketTypes.SUBACK, identifier=code) for code in (0x80, 1))
    ingest._on_subscribe(ingest.client, None, 1, [refused, granted, granted], None)
    assert "refused the subscription to vesper/+/status/heartbeat" in caplog.text
    assert "status/alerts" not in caplog.text and "connected to mqtt://127.0.0.1" in caplog.text
    caplog.clear()
    ingest._on_connect(ingest.client, None, ConnectFlags(True), ReasonCode(PacketTypes.CONNACK, "Success"), None)
    assert "(session resumed)" in caplog.text  # the broker kept the subscriptions: nothing to wait for


@pytest.mark.parametrize("was_connected", [False, True], ids=["never-connected", "disconnected"])
def test_no_offline_while_disconnected(
    start: Callable[[], Ingest], clock: FakeClock, db_path: Path, was_connected: bool
) -> None:
    """With connected_since None the sweep declares no device offline, however long the silence: it says it is blind."""
    earlier = start()
    earlier.connected()
    earlier.process([heartbeat(earlier)])
    close(earlier)
    ingest = start()
    if was_connected:
        ingest.connected()
        ingest.disconnected()
    assert ingest.connected_since is None
    for later in (TIMEOUT, 10 * TIMEOUT, 86_400.0):
        sweep_at(ingest, clock, T0 + later)
    assert types(db_path) == ["monitoring_interrupted"] and device(db_path)["liveness"] == "online"


@pytest.mark.parametrize(
    ("kind", "payload", "also"),
    [
        ("heartbeat", b'{"uptime": 5}', []),
        ("alerts", CRITICAL, ["alert"]),
        ("info", b'{"type": "door_opened"}', ["info"]),
    ],
)
def test_online_on_return(
    ingest: Ingest, clock: FakeClock, db_path: Path, kind: str, payload: bytes, also: list[str]
) -> None:
    """A first appearance is no event; after offline, the next live message of any kind brings one device_online."""
    ingest.connected()
    ingest.process([heartbeat(ingest)])
    assert types(db_path) == [] and device(db_path)["liveness"] == "online"
    sweep_at(ingest, clock, T0 + TIMEOUT)
    assert types(db_path) == ["device_offline"]
    clock.advance(5)
    ingest.process([message(ingest, "bell-1", kind, payload, mid=2)])
    assert types(db_path) == ["device_offline", "device_online", *also]
    assert device(db_path)["liveness"] == "online"
    clock.advance(1)
    ingest.process([heartbeat(ingest)])
    sweep_at(ingest, clock, clock() + TIMEOUT / 2)
    assert types(db_path) == ["device_offline", "device_online", *also]


@pytest.mark.parametrize(
    ("after_last_seen", "liveness"),
    [(TIMEOUT - EPSILON, "online"), (TIMEOUT, "offline"), (TIMEOUT + EPSILON, "offline")],
)
def test_deadline_is_inclusive(
    ingest: Ingest, clock: FakeClock, db_path: Path, after_last_seen: float, liveness: str
) -> None:
    """A device is overdue when now >= last_seen + timeout: last_seen exactly now - timeout is offline at now."""
    ingest.connected()  # at T0; the grace ends at T0 + TIMEOUT, before any `now` below
    last_seen = clock.advance(1)
    ingest.process([heartbeat(ingest)])
    now = last_seen + after_last_seen
    if after_last_seen == TIMEOUT:
        assert last_seen == now - TIMEOUT  # the float arithmetic is exact here: this really is the boundary
    sweep_at(ingest, clock, now)
    assert device(db_path)["liveness"] == liveness
    assert types(db_path) == ([] if liveness == "online" else ["device_offline"])


def test_retained_heartbeat_makes_a_device_known_not_online(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """A retained heartbeat proves nothing about now: the device is listed as unknown, and nothing is emitted."""
    ingest.connected()
    ingest.process([heartbeat(ingest, retained=True)])
    known = device(db_path)
    assert known["liveness"] == "unknown" and known["health"] == "unknown"
    assert known["last_heartbeat"] == {"uptime": 5}
    assert types(db_path) == []
    clock.advance(1)
    ingest.process([heartbeat(ingest)])  # unknown -> online is not announced either
    assert device(db_path)["liveness"] == "online" and types(db_path) == []


def test_retained_heartbeat_does_not_bring_an_offline_device_back(
    ingest: Ingest, clock: FakeClock, db_path: Path
) -> None:
    """An offline device stays offline on its retained heartbeat (delivered again at a resubscribe)."""
    ingest.connected()
    ingest.process([heartbeat(ingest)])
    sweep_at(ingest, clock, T0 + TIMEOUT)
    clock.advance(1)
    ingest.process([heartbeat(ingest, retained=True)])
    assert device(db_path)["liveness"] == "offline" and types(db_path) == ["device_offline"]


# --- alerts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("one_batch", [False, True], ids=["batch-each", "one-batch"])
def test_alert_repeat_then_cleared(ingest: Ingest, db_path: Path, one_batch: bool) -> None:
    """CRITICAL twice is one alert event; CLEARED emits alert_cleared and empties the active set."""
    ingest.connected()
    items = [message(ingest, "bell-1", "alerts", p, mid=i) for i, p in enumerate([CRITICAL, CRITICAL, CLEARED], 1)]
    if one_batch:
        ingest.process(items[:2])
    else:
        ingest.process(items[:1])
        ingest.process(items[1:2])
    assert types(db_path) == ["alert"]
    raised = events(db_path)[0]
    assert raised["severity"] == "critical" and raised["source_id"] == "bell-1"
    assert raised["payload"] == {"subsystem": "Audio", "state": "CRITICAL", "message": "x", "previous_state": None}
    assert [(a["subsystem"], a["state"], a["message"]) for a in alerts(db_path)] == [("Audio", "CRITICAL", "x")]
    ingest.process(items[2:])
    assert types(db_path) == ["alert", "alert_cleared"]
    assert events(db_path)[1]["payload"] == {"subsystem": "Audio", "previous_state": "CRITICAL"}
    assert alerts(db_path) == []
    assert device(db_path)["health"] == "ok"


@pytest.mark.parametrize(
    ("mid", "payload", "dup", "applied"),
    [
        (7, CRITICAL, True, False),  # the broker's redelivery of mid 7: already applied
        (7, b'{"subsystem": "Audio", "state": "CRITICAL", "msg": "x"}', True, True),  # same mid, other bytes
        (7, CRITICAL, False, True),  # DUP=0 is always a first delivery
        (9, CRITICAL, True, True),  # another packet id
    ],
    ids=["redelivery", "dup-other-bytes", "not-dup", "dup-other-mid"],
)
def test_redelivery_is_applied_once(
    ingest: Ingest, db_path: Path, mid: int, payload: bytes, dup: bool, applied: bool
) -> None:
    """A QoS 1 alert redelivered after a reconnect (DUP, same packet id, same bytes) is skipped; the rest apply."""
    ingest.connected()
    ingest.process([message(ingest, "bell-1", "alerts", CRITICAL, mid=7)])
    ingest.process([message(ingest, "bell-1", "alerts", CLEARED, mid=8)])  # so a wrongly applied repeat shows
    ingest.disconnected()
    ingest.connected(session_present=True)
    ingest.process([message(ingest, "bell-1", "alerts", payload, mid=mid, dup=dup)])
    assert types(db_path) == ["alert", "alert_cleared", *(["alert"] if applied else [])]
    assert len(alerts(db_path)) == (1 if applied else 0)


def test_redelivery_in_the_same_batch_as_its_original_is_applied_once(ingest: Ingest, db_path: Path) -> None:
    """Originals still in the inbox at a reconnect and the broker's DUP copies can land in one batch."""
    ingest.connected()
    originals = [message(ingest, "bell-1", "alerts", p, mid=m) for p, m in [(CRITICAL, 7), (CLEARED, 8)]]
    ingest.disconnected()
    ingest.connected(session_present=True)
    copies = [message(ingest, "bell-1", "alerts", p, mid=m, dup=True) for p, m in [(CRITICAL, 7), (CLEARED, 8)]]
    ingest.process(originals + copies)
    assert types(db_path) == ["alert", "alert_cleared"]


def test_a_redelivered_info_is_applied_once(ingest: Ingest, db_path: Path) -> None:
    """Info is subscribed at QoS 1 (§16): the broker's DUP copy of an applied playback info is no second event."""
    ingest.connected()
    started = b'{"type": "playback_started", "payload": {"melody_uid": "ABC"}}'
    ingest.process([message(ingest, "bell-1", "info", started, mid=5)])
    ingest.disconnected()
    ingest.connected(session_present=True)
    ingest.process([message(ingest, "bell-1", "info", started, mid=5, dup=True)])
    assert types(db_path) == ["playback_started"]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"{nope", "not_json"),
        (b"\xff\xfe", "not_utf8"),
        (b"[1, 2]", "not_object"),
        (b'{"subsystem": "Audio", "state": "MELTING"}', "bad_value"),
    ],
)
def test_bad_message_does_not_stop_the_good_ones(
    ingest: Ingest, clock: FakeClock, db_path: Path, bad: bytes, reason: str
) -> None:
    """A bad message in a batch is counted and skipped; the good ones around it are applied."""
    ingest.connected()
    ingest.process(
        [
            message(ingest, "bell-1", "alerts", CRITICAL, mid=1),
            message(ingest, "bell-1", "alerts", bad, mid=2),
            message(ingest, "bell-2", "info", b'{"type": "playback_started", "payload": {"melody_uid": "ABC"}}', qos=0),
            message(ingest, "bell-2", "heartbeat", bad, mid=3),  # any heartbeat payload is a sign of life
        ]
    )
    assert types(db_path) == ["alert", "playback_started"]
    assert [a["state"] for a in alerts(db_path)] == ["CRITICAL"]
    assert device(db_path, "bell-2")["playback"] == {"active": True, "melody_uid": "ABC"}
    sweep_at(ingest, clock, clock())  # the sweep saves the counters
    assert counters(db_path)[f"rejected.{reason}"] == 1


def test_first_heartbeat_keeps_only_a_json_object(ingest: Ingest, db_path: Path) -> None:
    """A heartbeat that is not a JSON object is still a sign of life, but is not kept as the last heartbeat."""
    ingest.connected()
    ingest.process([message(ingest, "bell-1", "heartbeat", b"not json")])
    assert device(db_path)["liveness"] == "online" and device(db_path)["last_heartbeat"] is None
    ingest.process([message(ingest, "bell-1", "heartbeat", json.dumps({"uptime": 6}).encode(), mid=2)])
    assert device(db_path)["last_heartbeat"] == {"uptime": 6}


# --- clock steps (SPEC §11): the wall clock steps, the monotonic one does not; time is passed in -------------------

FLEET = [f"bell-{i}" for i in range(20)]
STEPS = pytest.mark.parametrize("step", [600.0, -600.0], ids=["forward", "back"])


# Shorter than the steps (600 s): a window kept on the wall clock would end at a step forward, or 600 s late after
# one back; a tenth of the default (600 s) ticks a tenth as many seconds through it.
FLAP_WINDOW_S = 60.0


def _stepping(cfg: config_mod.Config) -> Iterator[tuple[Ingest, FakeClock, FakeClock]]:
    wall, mono = FakeClock(T0), FakeClock(5_000.0)
    ingest = Ingest(cfg, clock=wall, mono=mono)
    ingest.connected()
    yield ingest, wall, mono
    close(ingest)


@pytest.fixture
def stepping(cfg: config_mod.Config) -> Iterator[tuple[Ingest, FakeClock, FakeClock]]:
    """An Ingest connected at T0 on two fake clocks, (ingest, wall, monotonic): a test steps the wall clock alone."""
    yield from _stepping(cfg)


@pytest.fixture
def stepping_flaps(tmp_path: Path, db_path: Path) -> Iterator[tuple[Ingest, FakeClock, FakeClock]]:
    """As `stepping`, with a flap window of FLAP_WINDOW_S."""
    toml = write_config(
        tmp_path / "flaps.toml", broker_mod.free_port(), db_path,
        liveness={"heartbeat_timeout_s": TIMEOUT}, alerts={"flap_window_s": FLAP_WINDOW_S},
    )  # fmt: skip
    yield from _stepping(config_mod.load(toml))


def tick(ingest: Ingest, wall: FakeClock, mono: FakeClock, heard: list[str], seconds: float = 1.0) -> None:
    """`seconds` pass on both clocks; each device of `heard` heartbeats; the sweep runs at the ingest's now."""
    wall.advance(seconds)
    mono.advance(seconds)
    if heard:
        ingest.process([message(ingest, d, "heartbeat", b"{}", mid=i + 1) for i, d in enumerate(heard)])
    ingest.sweep(ingest.clock())


def tick_until(
    ingest: Ingest, wall: FakeClock, mono: FakeClock, done: Callable[[], bool], within: float, heard: list[str]
) -> float:
    """Tick until `done()` holds (or fail after `within` seconds); the monotonic time it first held."""
    end = mono() + within
    while not done():
        assert mono() < end, f"not within {within} s; events: {types(ingest.cfg.database.target)}"
        tick(ingest, wall, mono, heard)
    return mono()


def last_seen(db: Path) -> dict[str, float | None]:
    """Every reported device's stored last_seen, as the ingest wrote it (wall-clock seconds)."""
    conn = store.connect(db, readonly=True)
    try:
        return {device_id: seen for device_id, _, seen in store.liveness_all(conn)}
    finally:
        conn.close()


@STEPS
def test_a_step_declares_no_heartbeating_device_and_a_silent_one_on_time(
    stepping: tuple[Ingest, FakeClock, FakeClock], db_path: Path, step: float
) -> None:
    """20 devices heartbeat each second through a step: none goes offline; a silent one goes at its elapsed timeout."""
    ingest, wall, mono = stepping
    tick(ingest, wall, mono, [*FLEET, "quiet"])
    quiet_heard, quiet_seen = mono(), wall()
    for _ in range(3):
        tick(ingest, wall, mono, FLEET)
    wall.advance(step)  # NTP at boot, a VM resumed: the wall clock jumps, elapsed time does not
    gone_at = tick_until(ingest, wall, mono, lambda: "device_offline" in types(db_path), 3 * TIMEOUT, FLEET)
    assert gone_at == quiet_heard + TIMEOUT  # on time in elapsed terms: neither at the step nor 600 s late
    assert [e["source_id"] for e in events(db_path) if e["type"] == "device_offline"] == ["quiet"]
    seen = last_seen(db_path)
    assert seen["quiet"] == pytest.approx(quiet_seen + step)  # the rebase moved it: its silence kept its length
    assert seen["bell-0"] == pytest.approx(wall()) and ingest.clock() == pytest.approx(wall())
    assert ingest.connected_since == pytest.approx(T0 + step)  # the grace moved too
    for _ in range(3):
        tick(ingest, wall, mono, FLEET)
    assert types(db_path) == ["device_offline"]


@STEPS
def test_the_grace_after_a_connect_keeps_its_length_through_a_step(
    stepping: tuple[Ingest, FakeClock, FakeClock], db_path: Path, step: float
) -> None:
    """A device heard before the start gets one full timeout after the connect, in elapsed time, whatever the step."""
    ingest, wall, mono = stepping
    ingest.process([heartbeat(ingest)])
    ingest.connected()  # a reconnect: the grace starts here
    connected = mono()
    wall.advance(step)
    assert tick_until(ingest, wall, mono, lambda: "device_offline" in types(db_path), 3 * TIMEOUT, []) == (
        connected + TIMEOUT
    )


@STEPS
def test_flapping_windows_keep_their_length_through_a_step(
    stepping_flaps: tuple[Ingest, FakeClock, FakeClock], db_path: Path, step: float
) -> None:
    """A flapping subsystem ends after flap_window_s of calm in elapsed time; its stored changes moved too."""
    ingest, wall, mono = stepping_flaps
    window = ingest.cfg.alerts.flap_window_s
    assert window == FLAP_WINDOW_S < abs(step)
    for i in range(ingest.cfg.alerts.flap_transitions):
        tick(ingest, wall, mono, [], 0.1)
        ingest.process([message(ingest, "bell-1", "alerts", CLEARED if i % 2 else CRITICAL, mid=i + 1)])
    assert "alert_flapping" in types(db_path)
    calm_from = mono()
    wall.advance(step)
    ended = tick_until(ingest, wall, mono, lambda: "alert_flapping_ended" in types(db_path), 2 * window, ["bell-1"])
    assert calm_from + window <= ended < calm_from + window + 1


NOTIFY = (
    '[notify]\n[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/x"\n'
    '[[notify.rules]]\nchannel = "ops"\ngroup_wait_s = 5.0\nrepeat_after_s = 60.0\n'
)


@pytest.fixture
def notifying(tmp_path: Path, db_path: Path) -> Iterator[tuple[Ingest, FakeClock, FakeClock]]:
    """An Ingest with one channel (never sent to), a 5 s group window and reminders each 60 s, on two fake clocks."""
    path = write_config(tmp_path / "notify.toml", broker_mod.free_port(), db_path)
    path.write_text(path.read_text() + NOTIFY)
    wall, mono = FakeClock(T0), FakeClock(5_000.0)
    ingest = Ingest(config_mod.load(path), clock=wall, mono=mono)
    yield ingest, wall, mono
    close(ingest)


def queued(ingest: Ingest, count: int) -> Callable[[], bool]:
    """True once `count` messages are queued (the sweep's flush of the sinks decides them)."""
    return lambda: len(store.notifications(ingest.conn, 100)) >= count


@STEPS
def test_the_notifiers_window_and_reminders_keep_their_length_through_a_step(
    notifying: tuple[Ingest, FakeClock, FakeClock], step: float
) -> None:
    """A group's 5 s and a reminder's 60 s are elapsed time: a step neither sends them at once nor 600 s late."""
    ingest, wall, mono = notifying
    ingest.connected()
    ingest.process([message(ingest, "bell-1", "alerts", CRITICAL)])
    opened = mono()
    tick(ingest, wall, mono, [], 2.0)
    wall.advance(step)
    tick(ingest, wall, mono, [])  # the sweep rebases: the open group's stored window moved with the frame
    [group] = ingest.notifier.sink.grouper.groups.values()
    assert store.load_state(ingest.conn)[0] == [("0:ops", group.opened_at, group.due_at)]
    assert group.due_at == pytest.approx(wall() + 2)  # 3 of its 5 s have gone by
    told = tick_until(ingest, wall, mono, queued(ingest, 1), 30, [])
    assert told == opened + 5
    wall.advance(-step)
    tick(ingest, wall, mono, [])
    [[reminder]] = [list(t.values()) for t in ingest.notifier.sink.grouper.told.values()]
    assert store.load_state(ingest.conn)[2][0][4] == reminder.told_at == pytest.approx(wall() - 1)
    assert tick_until(ingest, wall, mono, queued(ingest, 2), 120, []) == told + 60


@STEPS
def test_a_step_neither_drops_a_message_early_nor_stalls_its_retries(db_path: Path, step: float) -> None:
    """A channel that keeps failing: retries after 1, 2, 4, 8 s and the give-up at 30 s, all in elapsed time."""
    wall, mono = FakeClock(T0), FakeClock(5_000.0)
    writer = store.Writer(db_path)
    with writer.transaction() as conn:
        store.enqueue(conn, "ops", "title", "body", "failure", [], wall())
    tried: list[float] = []
    worker = ChannelWorker(
        db_path, Channel("ops", "json://127.0.0.1:9/x"), 30.0, lambda *_: tried.append(mono()) or "refused", wall, mono
    )
    start = mono()
    try:
        while store.notifications(writer.conn, 1)[0]["status"] != "dropped":
            assert mono() < start + 60, f"not dropped in time; tried at {tried}"
            worker.step(writer.conn)
            if mono() == start + 2:
                wall.advance(step)
            wall.advance(0.5)
            mono.advance(0.5)
    finally:
        writer.close()
    assert [t - start for t in tried] == [0, 1, 3, 7, 15]
    assert mono() - 0.5 == start + 30  # dropped at the step that saw 30 s go by
