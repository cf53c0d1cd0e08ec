"""Pure rate limits, time passed in: the sign-in backoff and the one-command-per-interval limit.

All live in one worker's memory. With several gunicorn workers each keeps its own, so the bounds
hold per worker (docs/security.md says so); a single worker, the default, makes them exact.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAX_KEYS = 10_000  # a flood of made-up user names cannot grow a limiter without bound
FORGET_S = 3600.0  # a failure streak older than this is forgotten


@dataclass
class _Streak:
    failures: int
    last: float
    until: float


class Backoff:
    """Consecutive failures per key; after the n-th the key waits base * 2**(n-1) seconds, capped."""

    def __init__(self, base_s: float, max_s: float, max_keys: int = MAX_KEYS) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.max_keys = max_keys
        self._streaks: dict[str, _Streak] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds before `key` may try again (0.0: now)."""
        streak = self._streaks.get(key)
        if streak is None:
            return 0.0
        if now - streak.last > max(FORGET_S, self.max_s):
            del self._streaks[key]
            return 0.0
        return max(0.0, streak.until - now)

    def fail(self, key: str, now: float) -> float:
        """Record a failure; returns the wait it imposes."""
        self.wait(key, now)  # forgets a stale streak
        streak = self._streaks.pop(key, None) or _Streak(0, now, now)
        streak.failures += 1
        streak.last = now
        delay = min(self.max_s, self.base_s * 2 ** min(streak.failures - 1, 32))
        streak.until = now + delay
        self._streaks[key] = streak  # re-inserted: the dict stays ordered by last failure
        while len(self._streaks) > self.max_keys:
            del self._streaks[next(iter(self._streaks))]
        return delay

    def reset(self, key: str) -> None:
        """A success ends the streak."""
        self._streaks.pop(key, None)

    def failures(self, key: str) -> int:
        """Consecutive failures recorded for `key`."""
        streak = self._streaks.get(key)
        return streak.failures if streak else 0


def address_key(address: str) -> str:
    """The unit a guesser is held by: an IPv4 address, an IPv6 /64 (one host is given a whole /64), else the text."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_loopback:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class SignInLimit:
    """Failed sign-ins back off per address and per user name; the name's wait holds only addresses that failed."""

    def __init__(self, base_s: float, max_s: float, max_keys: int = MAX_KEYS) -> None:
        self.addresses = Backoff(base_s, max_s, max_keys)  # apart, so a flood of names cannot evict addresses
        self.names = Backoff(base_s, max_s, max_keys)

    def wait(self, address: str, name: str, now: float) -> float:
        """Seconds before `address` may try `name` (0.0: now)."""
        key = address_key(address)
        wait = self.addresses.wait(key, now)  # also forgets an old streak: the address is clean again
        if not self.addresses.failures(key):
            # Someone elsewhere failing for this name never locks out an address that has not failed: the
            # owner's right password from there is checked. A guesser gets one such try per fresh address;
            # after its first failure each of its addresses waits for the name's doubling backoff too.
            return wait
        return max(wait, self.names.wait(name.lower(), now))

    def failed(self, address: str, name: str, now: float) -> tuple[float, int]:
        """Record a wrong sign-in; returns the wait it imposes on this address and the longer streak."""
        key, user = address_key(address), name.lower()
        delay = max(self.addresses.fail(key, now), self.names.fail(user, now))
        return delay, max(self.addresses.failures(key), self.names.failures(user))

    def succeeded(self, address: str, name: str) -> None:
        """A right password ends the streaks of its address and of the name."""
        self.addresses.reset(address_key(address))
        self.names.reset(name.lower())


class Interval:
    """At most one action per key every `interval_s` seconds."""

    def __init__(self, interval_s: float, max_keys: int = MAX_KEYS) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._next: dict[str, float] = {}
        self._refused: set[str] = set()

    def take(self, key: str, now: float) -> float:
        """Reserve the key's slot and return 0.0, or return the seconds until it is free."""
        wait = self._next.get(key, now) - now
        if wait > 0:
            return wait
        if len(self._next) >= self.max_keys:
            self._next = {k: t for k, t in self._next.items() if t > now}
        self._next[key] = now + self.interval_s
        self._refused.discard(key)
        return 0.0

    def release(self, key: str) -> None:
        """Give the slot back: the action did not happen (e.g. the broker was away)."""
        self._next.pop(key, None)

    def first_refusal(self, key: str) -> bool:
        """True the first time in a window that `key` is refused (so a flood is logged once)."""
        if key in self._refused:
            return False
        self._refused.add(key)
        return True
