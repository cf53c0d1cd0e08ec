"""A token limited to sites (§14, docs/security.md#site-limited-tokens): what it may see and act on, in the views.

`auth.sites()` is the caller's sites, or None for every device (then nothing here costs a query). A device
of another site answers 404 exactly as one that does not exist: a 403 would confirm it exists.
"""

from __future__ import annotations

from typing import NoReturn

from flask import abort

from shared.silences import Silence
from shared.store import scope
from vesper_web import auth
from vesper_web.db import get_db

MOVE_REFUSED = "a token limited to sites cannot move a device to another site"
SILENCE_REFUSED = (
    "a token limited to sites may silence only its own devices: give a device (or silence its site with"
    " POST /api/bulk, filter {site})"
)


def mine(site: str | None) -> bool:
    """True when a device of this registry site is the caller's (always, for a caller not limited to sites)."""
    sites = auth.sites()
    return sites is None or site in sites


def visible(device_id: str) -> bool:
    """True when the device (registered or not) is the caller's; one indexed read, and only for a limited caller."""
    return auth.sites() is None or mine(scope.site_of(get_db(), device_id))


def hide(device_id: str) -> NoReturn:
    """The 404 of a device that is not the caller's, worded as for an unknown one."""
    abort(404, f"device {device_id} was never seen")


def require(device_id: str) -> None:
    """A 404 (hide) when the device is not the caller's."""
    if not visible(device_id):
        hide(device_id)


def silence_mine(silence: Silence, sites: tuple[str, ...], ids: frozenset[str]) -> bool:
    """A silence a site-limited caller sees and may end: of one of its devices, of its site, or of a list of its
    devices only; a tag's, a subsystem's or the whole fleet's reaches other sites and is not its."""
    if silence.device_id is not None:
        return silence.device_id in ids
    if silence.site is not None:
        return silence.site in sites
    return silence.device_ids is not None and silence.device_ids <= ids


def silences(found: list[Silence]) -> list[Silence]:
    """The silences the caller sees (all of them when it is not limited to sites)."""
    sites = auth.sites()
    if sites is None:
        return found
    ids = scope.device_ids(get_db(), sites)
    return [s for s in found if silence_mine(s, sites, ids)]
