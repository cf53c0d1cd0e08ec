"""The ring's wake-up spacing: twice a measured round of wake-ups, within its bounds (pure; time passed in)."""

from __future__ import annotations

import pytest

from vesper_web.ring import MAX_SPACING_S, ROUND_WEIGHT, SPACING_PER_CLIENT_S, Ring, Subscriber


def ring_with(clients: int) -> Ring:
    ring = Ring(16)
    for _ in range(clients):
        ring.subs[Subscriber(None, ring)] = None
    return ring


def round_of(ring: Ring, start: float, took: float) -> None:
    """One wake-up at `start`, every client back to waiting `took` seconds later."""
    ring.notify(start)
    for _ in range(ring.woken):
        ring.done(start + took)


def test_before_any_round_the_spacing_is_the_per_client_floor():
    assert ring_with(100).spacing() == pytest.approx(100 * SPACING_PER_CLIENT_S)


def test_the_last_client_back_closes_the_round_and_the_spacing_follows_it():
    ring = ring_with(3)
    ring.notify(10.0)
    ring.done(10.001)
    ring.done(10.002)
    assert ring.round_s == 0.0  # one client still writing: the round is open
    ring.done(10.004)
    assert ring.round_s == pytest.approx(ROUND_WEIGHT * 0.004)
    for i in range(60):
        round_of(ring, 11.0 + i, 0.004)
    assert ring.round_s == pytest.approx(0.004, rel=1e-3)
    assert ring.spacing() == pytest.approx(0.008, rel=1e-3)  # twice the round, above 3 x 10 us


def test_a_slow_round_is_capped_and_a_fast_one_never_goes_below_the_floor():
    slow = ring_with(2)
    for i in range(60):
        round_of(slow, float(i), 5.0)  # a stalled worker: the round counts as MAX_SPACING_S at most
    assert slow.spacing() == pytest.approx(MAX_SPACING_S)
    fast = ring_with(5000)
    for i in range(60):
        round_of(fast, float(i), 1e-6)
    assert fast.spacing() == pytest.approx(5000 * SPACING_PER_CLIENT_S)


def test_a_client_back_after_the_round_closed_does_not_reopen_it():
    ring = ring_with(2)
    round_of(ring, 1.0, 0.002)
    measured = ring.round_s
    ring.done(9.0)  # a third wait (a client that came back twice) before the next wake-up
    assert ring.round_s == measured
