"""Table tests of the pure liveness rules (docs/events.md#liveness); time is passed in."""

from __future__ import annotations

import pytest

from vesper_ingest.liveness import announces_online, is_overdue, sweep_cutoff

T = 90.0


@pytest.mark.parametrize(
    ("last_seen", "now", "connected_since", "overdue"),
    [
        (1000.0, 1089.0, 0.0, False),  # inside the timeout
        (1000.0, 1090.0, 0.0, True),  # exactly at the deadline
        (1000.0, 5000.0, 0.0, True),  # long silent
        (None, 1000.0, 0.0, True),  # known only from a retained heartbeat, never live
        (1000.0, 5000.0, None, False),  # disconnected from the broker: never declare anyone
        (1000.0, 5000.0, 4950.0, False),  # reconnected 50 s ago: grace
        (1000.0, 5040.0, 4950.0, True),  # grace over, still silent
        (None, 5000.0, 4950.0, False),  # grace covers never-live devices too
        (4990.0, 5040.0, 4950.0, False),  # spoke during the grace: its own timeout runs
        (4990.0, 5080.0, 4950.0, True),
    ],
)
def test_is_overdue(last_seen, now, connected_since, overdue):
    assert is_overdue(last_seen, now, T, connected_since) is overdue


def test_cutoff_is_none_in_grace_and_timeout_after():
    assert sweep_cutoff(100.0, T, 50.0) is None
    assert sweep_cutoff(140.0, T, 50.0) == 50.0
    assert sweep_cutoff(140.0, T, None) is None


@pytest.mark.parametrize(
    ("before", "announced"), [(None, False), ("unknown", False), ("online", False), ("offline", True)]
)
def test_only_offline_to_online_is_announced(before, announced):
    assert announces_online(before) is announced
