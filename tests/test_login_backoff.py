"""Failed sign-ins slow the guesser, not the owner: the sign-in limit as a table, then on a real gunicorn.

The address that failed waits (doubling); the name's backoff holds only addresses that have failed themselves,
so someone elsewhere cannot lock the owner out, and a guesser spread over many addresses gets one try per fresh
address (an IPv6 /64 counts as one) before the name's doubling wait holds each of them too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.config import load
from tests.conftest import write_config
from tests.support import Process, wait_for
from tests.test_security_e2e import PASSWORD, USERS, Http, Reply
from vesper_sim.broker import free_port
from vesper_web.ratelimit import SignInLimit, address_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("127.0.0.2", "127.0.0.2"),
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::/64"),  # a host is given a /64: its addresses are one guesser
        ("2001:db8::ffff:1", "2001:db8::/64"),
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("::1", "::1"),
        ("", "unknown"),  # a unix socket without proxy_hops: every caller is one address
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


def test_failures_elsewhere_never_hold_a_clean_address() -> None:
    limit = SignInLimit(base_s=1.0, max_s=60.0)
    for _ in range(7):
        limit.failed("10.0.0.2", "alice", 0.0)
    assert limit.wait("10.0.0.2", "alice", 0.0) == 60.0  # the guesser's address: 64 s, capped
    assert limit.wait("10.0.0.3", "alice", 0.0) == 0.0  # the owner's: the password is checked
    limit.succeeded("10.0.0.3", "alice")
    assert limit.wait("10.0.0.2", "alice", 0.0) == 60.0  # the owner's sign-in does not free the guesser's address
    assert limit.names.failures("alice") == 0


def test_an_address_that_failed_waits_for_the_names_backoff_too() -> None:
    limit = SignInLimit(base_s=1.0, max_s=60.0)
    assert limit.failed("10.0.0.4", "bob", 0.0) == (1.0, 1)
    for _ in range(3):
        limit.failed("10.0.0.2", "alice", 10.0)  # alice's name: 4 s
    assert limit.wait("10.0.0.4", "bob", 10.5) == 0.0  # its own second has passed
    assert limit.wait("10.0.0.4", "Alice", 10.5) == 3.5  # but it failed once, so alice's lock holds it
    assert limit.wait("10.0.0.4", "alice", 14.0) == 0.0
    assert limit.wait("10.0.0.4", "alice", 10.0 + 3601) == 0.0  # an hour on, the streaks are forgotten


def test_a_guesser_spread_over_many_addresses_is_slowed() -> None:
    """Each fresh address gets one try; after that every one of them waits for the name's doubling backoff."""
    limit = SignInLimit(base_s=1.0, max_s=600.0)
    addresses = [f"198.51.100.{i}" for i in range(8)]
    for address in addresses:
        assert limit.wait(address, "alice", 0.0) == 0.0
        limit.failed(address, "alice", 0.0)
    assert limit.names.failures("alice") == 8
    assert all(limit.wait(address, "alice", 2.0) == 128.0 - 2.0 for address in addresses)  # 1 s * 2**7


def test_ipv6_addresses_of_one_host_are_one_guesser() -> None:
    limit = SignInLimit(base_s=1.0, max_s=60.0)
    limit.failed("2001:db8::1", "alice", 0.0)
    assert limit.wait("2001:db8::2", "alice", 0.5) == 0.5  # another address of the same /64: not fresh
    assert limit.wait("2001:db8:0:1::1", "alice", 0.5) == 0.0  # another /64 is


def test_a_flood_of_names_cannot_evict_the_addresses() -> None:
    limit = SignInLimit(base_s=1.0, max_s=60.0, max_keys=100)
    limit.failed("10.0.0.2", "alice", 0.0)
    for i in range(1000):
        limit.failed("10.0.0.9", f"user{i}", 0.0)
    assert limit.addresses.failures("10.0.0.2") == 1 and len(limit.names._streaks) == 100


# --- on a real gunicorn, clients on 127.0.0.2, .3 and .4 --------------------------------------------


def _until_not_locked(attempt: Callable[[], Reply], timeout: float = 30.0) -> Reply:
    """Retry a sign-in while it is answered 429 (its address is waiting); the first other answer."""
    replies: list[Reply] = []

    def answered() -> bool:
        replies.append(attempt())
        return replies[-1].status != 429

    wait_for(answered, timeout, "the address's lock to pass")
    return replies[-1]


def test_seven_wrong_passwords_elsewhere_do_not_lock_the_owner_out(tmp_path: Path, start_web) -> None:
    auth = {"users": USERS, "login_backoff_s": 0.1, "login_backoff_max_s": 60.0}  # 0.1 s, 0.2 s ... 6.4 s
    config = write_config(tmp_path / "vesper.toml", free_port(), tmp_path / "vesper.db", auth=auth)
    web: Process = start_web(config)
    base = f"http://{load(config).web.bind}"  # 127.0.0.1:port
    guesser, owner, other = (Http(base, source=f"127.0.0.{n}") for n in (2, 3, 4))

    assert other.sign_in("bob", "a guess").status == 401  # .4 fails once, for another name
    for _ in range(7):
        assert _until_not_locked(lambda: guesser.sign_in("alice", "wrong")).status == 401
    assert "sign-in failed for 'alice' from 127.0.0.2 (7 in a row" in web.output()

    assert guesser.sign_in("alice", PASSWORD).status == 429  # the guesser's address is locked ...
    assert other.sign_in("alice", PASSWORD).status == 429  # ... and alice's lock holds any address that failed
    signed_in = owner.sign_in("alice", PASSWORD)  # ... but not one that has not
    assert signed_in.status == 303, signed_in.text
    me = owner.get("/api/me")
    assert me.status == 200 and "alice" in me.text
    assert "sign-in: user alice from 127.0.0.3" in web.output()
    assert guesser.sign_in("alice", PASSWORD).status == 429  # the owner's sign-in does not free the guesser
