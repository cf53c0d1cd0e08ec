"""Work too heavy for the gevent loop (a large import, a fleet's CSV), in a native thread: the worker keeps serving."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def off_the_loop(work: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy work in a native thread of gevent's pool when this is a gevent worker, else right here.

    The worker's loop (and so /healthz, §16) keeps serving meanwhile: the thread shares the GIL every few ms,
    and SQLite and psycopg wait without it. `work` gets no request or app context: pass it what it needs.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return work(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(work, args)  # type: ignore[no-any-return]
