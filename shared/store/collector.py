"""Python's cyclic garbage collector held off while a read builds millions of objects (history's reports, §13).

A fleet's month is about two million rows read into tuples; each few hundred new containers start a collection,
and as the heap grows the full ones walk every object alive (a tenth of a report's time at 100,000 devices). The
rows hold no cycles, so nothing is lost by collecting after. Held by a count: nested or concurrent holds (the web's
threads) turn the collector back on only when the last one ends, and only if it was on before the first.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holds = 0
_was_on = False


@contextmanager
def held() -> Iterator[None]:
    """The collector off for the block (back to its state before, once no other block holds it)."""
    global _holds, _was_on
    with _lock:
        if _holds == 0:
            _was_on = gc.isenabled()
            gc.disable()
        _holds += 1
    try:
        yield
    finally:
        with _lock:
            _holds -= 1
            if _holds == 0 and _was_on:
                gc.enable()
