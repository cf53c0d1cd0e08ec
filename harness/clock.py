"""A clock that moves only when told to, for code that takes its clock as a parameter."""

from __future__ import annotations


class FakeClock:
    """Time that moves only when the test moves it (passed to Ingest as its clock)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move on by `seconds`; returns the new time."""
        self.now += seconds
        return self.now
