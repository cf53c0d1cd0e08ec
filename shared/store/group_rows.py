"""A report's rows by device, site or tag (§13): its devices' figures summed per group by numpy, in C.

Each device's ratio, outages and time down are laid out in the fleet's order and summed per slot (the tuple of
groups a device is in, medians.Grouping's numbers) by np.bincount, which adds in that order as Python's sum
would; a group's sums are its slots' (by tag: each slot holding the tag). A group's availability is the mean of
its devices' ratios that exist (shared/availability.py's `group`), its under_99 those below availability.UNDER.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from shared import availability as av
from shared.store.fleet import Figures, Fleet
from shared.store.medians import Grouping

OUTAGES, DOWN_S = operator.attrgetter("outages"), operator.attrgetter("down_s")  # of a DeviceFigures


def _figures(fleet: Fleet, results: Figures, ids: list[str]) -> tuple[Any, Any, Any]:
    """Each device's ratio (nan: none), outages and seconds down, in the order of `ids`."""
    known = np.fromiter(map(fleet.known.__getitem__, ids), np.float64, len(ids))
    plain = np.nan if results.plain.ratio is None else results.plain.ratio
    ratio, outages, down = np.where(known <= results.begins, plain, np.nan), np.zeros(len(ids)), np.zeros(len(ids))
    position = dict(zip(ids, range(len(ids)), strict=True))
    special = {position[d]: f for d, f in results.special.items() if d in position}  # only the fleet's devices
    if special:
        at = np.fromiter(special, np.int64, len(special))
        ratio[at] = np.array([f.ratio for f in special.values()], dtype=np.float64)  # None: nan
        outages[at] = np.fromiter(map(OUTAGES, special.values()), np.float64, len(special))
        down[at] = np.fromiter(map(DOWN_S, special.values()), np.float64, len(special))
    return ratio, outages, down


def _sums(grouping: Grouping, fleet: Fleet, results: Figures) -> dict[str, Any]:
    """Per slot: devices with a ratio, their ratios' sum, those under 99 %, outages, seconds down."""
    ids = list(grouping.slot_of)
    slots = np.fromiter(grouping.slot_of.values(), np.int64, len(ids))
    ratio, outages, down = _figures(fleet, results, ids)
    has = ~np.isnan(ratio)
    weights = {"devices": has, "ratios": np.where(has, ratio, 0.0), "under_99": has & (ratio < av.UNDER),
               "outages": outages, "down_s": down}  # fmt: skip
    size = len(grouping.numbers)
    return {name: np.bincount(slots, weights=w, minlength=size).tolist() for name, w in weights.items()}


def group_rows(grouping: Grouping, fleet: Fleet, results: Figures) -> list[dict[str, Any]]:
    """A row per group (sorted, no group last): devices, availability, under_99, outages, down_s; MTTA/MTTR None."""
    sums = _sums(grouping, fleet, results)
    by_key = grouping.groups().slots
    rows = []
    for key in sorted(by_key, key=lambda k: (k is None, k or "")):
        devices, ratios, under, outages, down = (
            sum(sums[name][n] for n in by_key[key]) for name in ("devices", "ratios", "under_99", "outages", "down_s")
        )
        rows.append({
            "group": key, "devices": int(devices), "availability": ratios / devices if devices else None,
            "under_99": int(under), "outages": int(outages), "down_s": round(down, 3), "mtta_s": None, "mttr_s": None,
        })  # fmt: skip
    return rows
