"""[auth] users and tokens (§14): who may sign in or call the API, with which role, limited to which sites.

An entry is a string, "NAME:ROLE:HASH" (or "NAME:HASH" as written before roles: an admin, so nothing breaks on
upgrade), or a table { name, role, hash, sites } whose `sites` (tokens only) limits what it sees and acts on.
`python -m vesper_web.passwd` prints either. A wrong entry is never echoed: it may be a pasted password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.settings import fail

ROLES = ("viewer", "operator", "admin")  # each can do all that the ones before it can
NAME = r"[A-Za-z0-9_.@-]{1,64}"
PASSWORD_HASH = re.compile(r"(scrypt|pbkdf2)(:[0-9a-z:]+)?\$[^$]+\$[0-9a-f]+")
TOKEN_HASH = re.compile(r"sha256:[0-9a-f]{64}")
LINE = re.compile(rf"(?P<name>{NAME}):(?:(?P<role>{'|'.join(ROLES)}):)?(?P<hash>.+)")
MAX_SITE = 128  # as the registry's site (vesper_web/registry_rules.py)


@dataclass(frozen=True)
class Account:
    """One configured user or token: its name, role, stored hash and, for a token, the sites it is limited to."""

    name: str
    role: str = "admin"
    hash: str = ""
    sites: tuple[str, ...] | None = None  # None: every site (and devices with none)


def rank(role: str) -> int:
    """A role's place: viewer 0, operator 1, admin 2."""
    return ROLES.index(role)


def _from_line(key: str, line: str, rule: re.Pattern[str], how: str) -> Account:
    match = LINE.fullmatch(line)
    if not match or not rule.fullmatch(match["hash"]):
        fail(key, f'expected "name:role:hash" as printed by `{how}`')
    return Account(match["name"], match["role"] or "admin", match["hash"])


def _from_table(key: str, entry: dict[str, Any], rule: re.Pattern[str], how: str, tokens: bool) -> Account:
    unknown = set(entry) - {"name", "role", "hash", "sites"}
    if unknown:
        fail(f"{key}.{sorted(unknown)[0][:32]}", "unknown key")
    name, role, hashed = entry.get("name"), entry.get("role", "admin"), entry.get("hash")
    if not isinstance(name, str) or not re.fullmatch(NAME, name):
        fail(f"{key}.name", "expected 1-64 characters of A-Z a-z 0-9 _ . @ -")
    if role not in ROLES:
        fail(f"{key}.role", f"expected one of {' | '.join(ROLES)}")
    if not isinstance(hashed, str) or not rule.fullmatch(hashed):
        fail(f"{key}.hash", f"expected the hash printed by `{how}`")
    sites = entry.get("sites")
    if sites is not None:
        if not tokens:
            fail(f"{key}.sites", "only a token may be limited to sites")
        if not isinstance(sites, list) or not sites or not all(isinstance(s, str) and s for s in sites):
            fail(f"{key}.sites", "expected a list of one or more site names")
        if any(len(s) > MAX_SITE for s in sites):
            fail(f"{key}.sites", f"a site name is at most {MAX_SITE} characters")
        sites = tuple(dict.fromkeys(sites))
    return Account(name, role, hashed, sites)


def parse(key: str, value: Any) -> tuple[Account, ...]:
    """auth.users or auth.tokens: a list of lines or tables, names unique."""
    tokens = key.endswith("tokens")
    rule, how = (TOKEN_HASH, "token NAME") if tokens else (PASSWORD_HASH, "user NAME")
    how = f"python -m vesper_web.passwd {how}"
    if not isinstance(value, list):
        fail(key, "expected a list")
    accounts = []
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            accounts.append(_from_line(f"{key}[{i}]", entry, rule, how))
        elif isinstance(entry, dict):
            accounts.append(_from_table(f"{key}[{i}]", entry, rule, how, tokens))
        else:
            fail(f"{key}[{i}]", "expected a string or a table")
    names = [account.name for account in accounts]
    if len(set(names)) != len(names):
        fail(key, "a name appears twice")
    return tuple(accounts)
