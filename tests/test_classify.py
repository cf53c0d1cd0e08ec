"""Table tests of the pure classifier (docs/events.md#rejections)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.topics import Topics
from vesper_ingest.classify import MAX_MESSAGE, REASONS, Alert, Heartbeat, Info, Rejected, classify

T = Topics("vesper")


def j(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("topic", "payload", "retained", "expected"),
    [
        (
            "vesper/bell-1/status/alerts",
            j({"subsystem": "FileManager", "state": "WARNING", "msg": "ConfigManager health check failed"}),
            False,
            Alert("bell-1", "FileManager", "WARNING", "ConfigManager health check failed"),
        ),
        (
            "vesper/bell-1/status/alerts",
            j({"subsystem": "FileManager", "state": "CLEARED"}),
            False,
            Alert("bell-1", "FileManager", "CLEARED", None),
        ),
        ("vesper/b/status/alerts", j({"subsystem": "A", "state": "FAILED"}), False, Alert("b", "A", "FAILED", None)),
        (
            "vesper/bell-1/status/info",
            j({"type": "playback_started", "payload": {"melody_uid": "ABC123"}}),
            False,
            Info("bell-1", "playback_started", {"melody_uid": "ABC123"}),
        ),
        ("vesper/bell-1/status/info", j({"type": "playback_stopped"}), False, Info("bell-1", "playback_stopped", {})),
        ("vesper/x.y:z_1-2/status/info", j({"type": "door_open"}), False, Info("x.y:z_1-2", "door_open", {})),
        ("vesper/bell-1/status/heartbeat", j({"uptime": 3}), True, Heartbeat("bell-1", True, '{"uptime":3}')),
        ("vesper/bell-1/status/heartbeat", b"\xff\xfe", False, Heartbeat("bell-1", False, None)),
        ("vesper/bell-1/status/heartbeat", b"[1,2]", False, Heartbeat("bell-1", False, None)),
        ("vesper/bell-1/status/heartbeat", j({"pad": "x" * 5000}), False, Heartbeat("bell-1", False, None)),
        # A heartbeat is a sign of life whatever it holds; a body the API could not serve is not kept.
        ("vesper/bell-1/status/heartbeat", b'{"t":1e400}', False, Heartbeat("bell-1", False, None)),
        ("vesper/bell-1/status/heartbeat", b'{"t":NaN}', False, Heartbeat("bell-1", False, None)),
        ("vesper/bell-1/status/heartbeat", b'{"fw":"\\udc80"}', False, Heartbeat("bell-1", False, None)),
        ("vesper/b/status/heartbeat", b'{"a":' + b"[" * 40 + b"]" * 40 + b"}", False, Heartbeat("b", False, None)),
        ("vesper/b/status/heartbeat", j({"t": 21.5, "v": "é"}), False, Heartbeat("b", False, '{"t":21.5,"v":"é"}')),
        ("vesper/b/status/info", j({"type": "x", "payload": {"a": {"b": [1.5e300]}}}), False,
         Info("b", "x", {"a": {"b": [1.5e300]}})),
    ],
)
def test_good_messages(topic, payload, retained, expected):
    assert classify(T, topic, payload, retained) == expected


ALERTS = "vesper/d1/status/alerts"
INFO = "vesper/d1/status/info"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("other/d1/status/alerts", j({}), "bad_topic"),
        ("vesper/d1/status/weird", j({}), "bad_topic"),
        ("vesper/d1/status/alerts/extra", j({}), "bad_topic"),
        ("vesper//status/alerts", j({}), "bad_device_id"),
        ("vesper/" + "a" * 65 + "/status/alerts", j({}), "bad_device_id"),
        ("vesper/bad id/status/alerts", j({}), "bad_device_id"),
        ("vesper/dév/status/alerts", j({}), "bad_device_id"),
        ("vesper/a\x00b/status/alerts", j({}), "bad_device_id"),
        ("vesper/<img>/status/alerts", j({}), "bad_device_id"),
        (ALERTS, b"x" * (64 * 1024 + 1), "oversized"),
        (ALERTS, b"\xff\xfe\xfd", "not_utf8"),
        (ALERTS, b"{not json", "not_json"),
        (ALERTS, b"[" * 30_000 + b"]" * 30_000, "not_json"),
        (ALERTS, b"[1, 2]", "not_object"),
        (ALERTS, b'"WARNING"', "not_object"),
        (ALERTS, j({"state": "WARNING"}), "missing_field"),
        (ALERTS, j({"subsystem": "A"}), "missing_field"),
        (ALERTS, j({"subsystem": 5, "state": "WARNING"}), "bad_type"),
        (ALERTS, j({"subsystem": "A", "state": ["WARNING"]}), "bad_type"),
        (ALERTS, j({"subsystem": "A", "state": "WARNING", "msg": 7}), "bad_type"),
        (ALERTS, j({"subsystem": "A", "state": "HEALTHY"}), "bad_value"),
        (ALERTS, j({"subsystem": "", "state": "WARNING"}), "bad_value"),
        (ALERTS, j({"subsystem": "A" * 65, "state": "WARNING"}), "bad_value"),
        (ALERTS, j({"subsystem": "A" * 65, "state": "WARNING", "msg": "m" * 5000, "code": 7}), "bad_value"),
        (ALERTS, j({"subsystem": "", "state": "CRITICAL", "extra": 1}), "bad_value"),
        (ALERTS, j({"subsystem": "A\nB", "state": "WARNING"}), "bad_value"),
        (ALERTS, j({"subsystem": "\u200bA", "state": "WARNING"}), "bad_value"),
        (ALERTS, j({"subsystem": "A\u202e", "state": "WARNING", "code": 7}), "bad_value"),  # extra field or not
        (INFO, j({"payload": {}}), "missing_field"),
        (INFO, j({"type": 1}), "bad_type"),
        (INFO, j({"type": "x", "payload": [1]}), "bad_type"),
        (INFO, j({"type": ""}), "bad_value"),
        # JSON Python reads but a browser, SQLite or the web's deeper stack could not take back.
        (INFO, b'{"type": "x", "payload": {"v": NaN}}', "not_json"),
        (INFO, b'{"type": "x", "payload": {"v": -Infinity}}', "not_json"),
        (INFO, b'{"type": "x", "payload": {"v": 1e400}}', "bad_value"),
        (INFO, b'{"type": "x", "payload": {"v": [-2e308]}}', "bad_value"),
        (INFO, b'{"type": "x", "payload": ' + b'{"a":' * 32 + b"1" + b"}" * 33, "bad_value"),
        (INFO, b'{"type": "x", "payload": {"k": "\\ud800"}}', "not_utf8"),
        (INFO, b'{"type": "x", "payload": {"\\udfff": 1}}', "not_utf8"),
        (ALERTS, b'{"subsystem": "A", "state": "WARNING", "msg": "a\\ud83d"}', "not_utf8"),
        (INFO, j({"type": "playback_started", "payload": {"melody_uid": 5}}), "bad_value"),
    ],
)
def test_bad_messages_are_rejected_with_reason(topic, payload, reason):
    result = classify(T, topic, payload, False)
    assert isinstance(result, Rejected) and result.reason == reason, result
    assert result.reason in REASONS


CUT = "m" * 1023 + "\u2026"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # Fields the console does not know are ignored: newer firmware may add them (SPEC §2, §11).
        (j({"subsystem": "Motor", "state": "CRITICAL", "msg": "x", "code": 7}), Alert("d1", "Motor", "CRITICAL", "x")),
        (j({"subsystem": "A", "state": "WARNING", "extra": {"deep": [1]}}), Alert("d1", "A", "WARNING", None)),
        (j({"subsystem": "A", "state": "CLEARED", "since": None}), Alert("d1", "A", "CLEARED", None)),
        (j({"subsystem": "A", "state": "WARNING", "k" * 10_000: 1}), Alert("d1", "A", "WARNING", None)),
        # A msg over 1 KiB is cut to 1024 characters ending in an ellipsis, and says it was.
        (j({"subsystem": "A", "state": "WARNING", "msg": "m" * 1024}), Alert("d1", "A", "WARNING", "m" * 1024)),
        (j({"subsystem": "A", "state": "WARNING", "msg": "m" * 1025}), Alert("d1", "A", "WARNING", CUT, True)),
        (j({"subsystem": "A", "state": "FAILED", "msg": "m" * 5000}), Alert("d1", "A", "FAILED", CUT, True)),
        (j({"subsystem": "A", "state": "WARNING", "msg": "m" * 5000, "v": 2}), Alert("d1", "A", "WARNING", CUT, True)),
        (j({"subsystem": "A", "state": "WARNING", "msg": "\0" * 2000}),
         Alert("d1", "A", "WARNING", "\ufffd" * 1023 + "\u2026", True)),
    ],
)
def test_alerts_are_not_refused_for_cosmetic_reasons(payload, expected):
    assert classify(T, ALERTS, payload, False) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (j({"type": "playback_stopped"}), Info("d1", "playback_stopped", {})),  # without payload
        (j({"type": "x", "when": 1}), Info("d1", "x", {})),
        (j({"type": "playback_started", "payload": {"melody_uid": "M1"}, "fw": "2.1"}),
         Info("d1", "playback_started", {"melody_uid": "M1"})),
    ],
)
def test_info_without_payload_or_with_extra_fields_is_accepted(payload, expected):
    assert classify(T, INFO, payload, False) == expected


@pytest.mark.parametrize("n", [1025, 1500, 5000, 10_000])
def test_a_cut_msg_is_at_most_1024_characters_ending_in_an_ellipsis(n):
    got = classify(T, ALERTS, j({"subsystem": "A", "state": "WARNING", "msg": "é" * n}), False)
    assert isinstance(got, Alert) and got.truncated
    assert got.message == "é" * 1023 + "…" and len(got.message) == MAX_MESSAGE


def test_other_prefix():
    assert classify(Topics("fleet"), "fleet/d/status/info", j({"type": "x"}), False) == Info("d", "x", {})
    assert classify(Topics("fleet"), "vesper/d/status/info", j({"type": "x"}), False) == Rejected("bad_topic")


@given(topic=st.text(max_size=80), payload=st.binary(max_size=300), retained=st.booleans())
def test_never_raises_on_anything(topic, payload, retained):
    result = classify(T, topic, payload, retained)
    assert isinstance(result, Heartbeat | Alert | Info) or result.reason in REASONS


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
)


@given(obj=JSON)
def test_never_raises_on_any_json(obj):
    for topic in (ALERTS, INFO, "vesper/d1/status/heartbeat"):
        result = classify(T, topic, json.dumps(obj).encode(), False)
        assert isinstance(result, Heartbeat | Alert | Info) or result.reason in REASONS


def test_nul_in_an_alert_message_is_kept_as_the_replacement_character():
    got = classify(T, "vesper/b/status/alerts", j({"subsystem": "A", "state": "WARNING", "msg": "a\0b"}), False)
    assert got == Alert("b", "A", "WARNING", "a\ufffdb")  # the alert is kept; PostgreSQL's text cannot hold NUL
