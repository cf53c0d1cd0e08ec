"""The one home of the alert severity order; the SQL, the health colour and the console's JS derive from it."""

from __future__ import annotations

# Most severe first: the order of an active alert set, and the rank a device's worst alert has.
ALERT_STATES_BY_RANK = ("FAILED", "CRITICAL", "WARNING")
ALERT_RANK = {state: rank for rank, state in enumerate(ALERT_STATES_BY_RANK)}
ALERT_SEVERITY = {"FAILED": "critical", "CRITICAL": "critical", "WARNING": "warning"}
RANK_HEALTH = {ALERT_RANK[state]: ALERT_SEVERITY[state] for state in ALERT_STATES_BY_RANK}


def worse(a: str, b: str) -> str:
    """The worse of two alert states by rank; anything that is not an alert state gives way (the first if neither)."""
    if b in ALERT_RANK and (a not in ALERT_RANK or ALERT_RANK[b] < ALERT_RANK[a]):
        return b
    return a


def rank_sql(column: str = "state") -> str:
    """A SQL CASE giving an alert state column its rank (NULL for no alert)."""
    whens = " ".join(f"WHEN '{state}' THEN {rank}" for state, rank in ALERT_RANK.items())
    return f"CASE {column} {whens} END"


# The device list's "severity" order (§7): worst first.
HEALTH_ORDER = ("critical", "warning", "offline", "unknown", "ok")


def _place_sql(liveness: str, worst_rank: str, offline_first: bool) -> str:
    """A SQL CASE giving a device its place in HEALTH_ORDER; offline_first: offline before its alerts count."""
    place = {name: n for n, name in enumerate(HEALTH_ORDER)}
    alerts = " ".join(f"WHEN {worst_rank} = {rank} THEN {place[name]}" for rank, name in sorted(RANK_HEALTH.items()))
    offline = f"WHEN {liveness} = 'offline' THEN {place['offline']}"
    first, then = (offline, alerts) if offline_first else (alerts, offline)
    return f"CASE {first} {then} WHEN {liveness} = 'unknown' THEN {place['unknown']} ELSE {place['ok']} END"


def health_sql(liveness: str = "liveness", worst_rank: str = "worst_rank") -> str:
    """A SQL CASE giving a device its place in HEALTH_ORDER from its liveness and worst alert rank, as health() does."""
    return _place_sql(liveness, worst_rank, offline_first=True)


def standing_sql(liveness: str = "liveness", worst_rank: str = "worst_rank") -> str:
    """A SQL CASE giving a device its standing, as standing() does (the index devices_health is on it)."""
    return _place_sql(liveness, worst_rank, offline_first=False)


def standing(liveness: str, worst_rank: int | None) -> str:
    """Where a device sorts (sort=severity) and which alert chip counts it: its worst alert's, else its health.

    An offline device with a CRITICAL alert is offline (health) and stands with the critical ones (§12);
    the "offline" chip counts every offline device besides.
    """
    return RANK_HEALTH[worst_rank] if worst_rank is not None else health(liveness, None)


def health(liveness: str, worst_rank: int | None) -> str:
    """offline beats alerts; alerts beat unknown; otherwise ok (docs/events.md#health)."""
    if liveness == "offline":
        return "offline"
    if worst_rank is not None:
        return RANK_HEALTH[worst_rank]
    if liveness == "unknown":
        return "unknown"
    return "ok"


def js_module() -> str:
    """The rules as an ES module for the console (served at /static/rules.js)."""
    ranks = ", ".join(f"{state}: {rank}" for state, rank in ALERT_RANK.items())
    severities = ", ".join(f"{state}: {severity!r}" for state, severity in ALERT_SEVERITY.items())
    return (
        "// Generated from shared/severity.py: the one home of the alert severity order.\n"
        f"export const STATE_RANK = Object.freeze({{ {ranks} }});\n"
        f"export const STATE_SEVERITY = Object.freeze({{ {severities} }});\n"
    ).replace("'", '"')
