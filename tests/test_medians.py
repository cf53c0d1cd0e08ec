"""MTTA/MTTR's medians by group (SPEC §13), pure: the joined texts a read returns, against statistics.median.

The reads themselves over real databases: tests/test_history_store.py (test_mtta_and_mttr_are_medians).
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from typing import Any

import pytest

from shared.store.medians import FLEET, Grouping, Joined, medians, together


def joined(times: dict[str, list[int]]) -> Joined:
    """Each device's times as a read returns them: one text per device (None for none) and how many."""
    rows = [(device_id, ",".join(map(str, ms)) or None, len(ms)) for device_id, ms in times.items()]
    return Joined(*map(tuple, zip(*rows, strict=True)))


def expected(times: dict[str, list[int]], slot_of: dict[str, tuple[Any, ...]]) -> dict[Any, float | None]:
    """statistics.median of each group's times and of all, in seconds (the definition)."""
    by_key: dict[Any, list[int]] = defaultdict(list)
    for device_id, ms in times.items():
        for key in slot_of.get(device_id, (None,)):
            by_key[key].extend(ms)
    every = [m for ms in times.values() for m in ms]
    out = {key: statistics.median(ms) / 1000 for key, ms in by_key.items() if ms}
    return out | ({FLEET: statistics.median(every) / 1000} if every else {})


def test_each_site_median_even_and_odd_counts() -> None:
    slot_of = {"a1": ("a",), "a2": ("a",), "b1": ("b",), "c1": ("c",)}
    times = {"a1": [60_000, 600_000], "a2": [120_000], "b1": [30_000, 90_000], "c1": []}
    found = Grouping(slot_of, lambda device_id: [None]).medians(joined(times))
    assert found == {"a": 120.0, "b": 60.0, FLEET: 90.0}


def test_a_device_in_several_tags_counts_in_each() -> None:
    slot_of = {"d1": ("x", "y"), "d2": ("x",), "d3": (None,)}
    times = {"d1": [1_000, 2_000], "d2": [9_000], "d3": [4_000]}
    found = Grouping(slot_of, lambda device_id: [None]).medians(joined(times))
    assert found == {"x": 2.0, "y": 1.5, None: 4.0, FLEET: 3.0}


def test_a_device_the_fleet_no_longer_lists_goes_to_its_keys() -> None:
    grouping = Grouping({"d1": ("a",)}, lambda device_id: [None])
    assert grouping.medians(joined({"d1": [1_000], "gone": [3_000, 5_000]})) == {"a": 1.0, None: 4.0, FLEET: 3.0}
    assert grouping.medians(joined({"gone": [7_000]})) == {None: 7.0, FLEET: 7.0}  # placed once, kept


def test_no_times_no_medians() -> None:
    assert Grouping({"d1": ("a",)}, lambda device_id: [None]).medians(joined({"d1": []})) == {}
    assert medians(joined({"d1": []}), None) == {}


@pytest.mark.parametrize("spread", [10**6, 10**18])  # the second too wide to pack with a group's number: lexsort
@pytest.mark.parametrize("seed", range(5))
def test_random_fleets_match_statistics_median(seed: int, spread: int) -> None:
    rng = random.Random(seed)
    sites = [f"s{n}" for n in range(rng.randint(1, 40))]
    slot_of = {f"d{n}": (rng.choice(sites),) for n in range(300)}
    times = {d: [rng.randint(-spread // 100, spread) for _ in range(rng.randint(0, 9))] for d in slot_of}
    times |= {"gone": [rng.randint(0, spread)]}  # listed by no fleet: its own group (None)
    found = Grouping(slot_of, lambda device_id: [None]).medians(joined(times))
    assert found == pytest.approx(expected(times, slot_of), rel=1e-12)
    assert medians(joined(times), None) == {FLEET: found[FLEET]}
    assert medians(together(joined(times), joined({"d0": [1]})), None) == medians(joined(times | {"x": [1]}), None)
