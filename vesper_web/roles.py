"""Who may call what (§14): each endpoint's role and what a token limited to sites gets there.

Every endpoint of the app is decided here; one left out needs admin and refuses a site-limited token (closed
until decided), and tests/test_roles.py, generated from the URL map, fails for it. A site-limited token
reaches "sites" endpoints, which answer for its sites only (vesper_web/scope.py), and "any" ones, which hold
nothing of a device; "fleet" ones (fleet-wide counts, notifications, the audit log) refuse it with 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.accounts import rank


@dataclass(frozen=True)
class Access:
    """The least role an endpoint needs, and what a site-limited token gets there: sites, any or fleet."""

    role: str
    scope: str = "sites"


OPEN = Access("", "any")  # before sign-in: the guard's OPEN_ENDPOINTS
READ = Access("viewer")
ACT = Access("operator")
INFO = Access("viewer", "any")
FLEET = Access("viewer", "fleet")
ADMIN = Access("admin", "fleet")

ENDPOINTS: dict[str, Access] = {
    "healthz": OPEN,
    "status.healthz_pipeline": OPEN,
    "console.static": OPEN,
    "console.rules": OPEN,
    "login.login": OPEN,
    "login.logout": OPEN,
    "api.me": INFO,
    "status.status": INFO,  # whether the monitor sees: every viewer's business
    "openapi.document": INFO,
    "openapi.docs": INFO,
    "openapi.asset": INFO,
    "api.devices": READ,
    "api.summary": READ,
    "api.device": READ,
    "api.alerts": READ,
    "api.events": READ,
    "stream.stream": READ,
    "console.devices": READ,
    "console.device": READ,
    "console.events": READ,
    "console.silences": READ,
    "console.device_history": READ,
    "console.reports": READ,
    "lifecycle.list_silences": READ,
    "history.device_history": READ,
    "history.incidents": READ,
    "history.availability": READ,
    "history.problems": READ,
    "api.health_check": ACT,
    "lifecycle.acknowledge": ACT,
    "lifecycle.create_silence": ACT,
    "lifecycle.expire_silence": ACT,
    "bulk.bulk": ACT,
    "registry.patch_device": ACT,
    "registry.delete_device": ACT,
    "registry.import_devices": Access("operator", "fleet"),  # a CSV may name any site
    "metrics.metrics": FLEET,
    "notifications.notifications": FLEET,  # one message may tell of many sites' devices
    "notifications.page": FLEET,
    "notifications.notify_test": ADMIN,  # sends to a channel: configuration, not operation
    "audit.audit": ADMIN,
    "audit.page": ADMIN,
}
UNDECIDED = Access("admin", "fleet")


def access(endpoint: str | None) -> Access:
    """What the endpoint needs; one not decided here needs admin and an unlimited caller."""
    return ENDPOINTS.get(endpoint or "", UNDECIDED)


def refusal(role: str, sites: tuple[str, ...] | None, endpoint: str | None) -> str | None:
    """Why this role (limited to these sites, or not) may not call the endpoint, or None when it may."""
    need = access(endpoint)
    if need.role and rank(role) < rank(need.role):
        return f"this needs the {need.role} role (yours: {role})"
    if sites is not None and need.scope == "fleet":
        return "this is fleet-wide; a token limited to sites cannot read or change it"
    return None


def role_needed(role: str, endpoint: str | None) -> str | None:
    """The role a refusal names: the endpoint's, or None when the role is enough (a site limit refused it)."""
    need = access(endpoint).role
    return need if need and rank(role) < rank(need) else None

