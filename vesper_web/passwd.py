"""Make the entries for config.toml's [auth]: `python -m vesper_web.passwd user NAME | token NAME`.

Each asks for the role (viewer, operator or admin; or --role) and a token for the sites it is limited to
(none: all; or --site, repeated). `user NAME` asks for a password (twice on a terminal; one line from standard
input otherwise) and prints "NAME:ROLE:<scrypt hash>" for `users`. `token NAME` prints two lines: a new random API
token (for the script that sends it; it is stored nowhere) and "NAME:ROLE:sha256:<hex>" (with sites, a TOML table)
for `tokens`. Tokens are 256 random bits, so a fast hash is enough; passwords are chosen by people: scrypt.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import re
import secrets
import sys

from werkzeug.security import generate_password_hash

from shared.accounts import NAME, ROLES

MIN_PASSWORD = 10
TOKEN_PREFIX = "vsp_"


def token_hash(token: str) -> str:
    """The form a token is stored in: sha256:<hex>."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def user_line(name: str, password: str, role: str = "admin") -> str:
    """A `users` entry for name, password and role."""
    return f"{name}:{role}:{generate_password_hash(password)}"


def new_token(name: str, role: str = "admin") -> tuple[str, str]:
    """A fresh token and its `tokens` entry (a string: every site)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, f"{name}:{role}:{token_hash(token)}"


def toml_entry(name: str, role: str, hashed: str, sites: list[str]) -> str:
    """A `tokens` entry limited to sites, as a TOML inline table (json's string quoting is TOML's basic string)."""
    listed = ", ".join(json.dumps(site) for site in sites)
    return f'{{ name = "{name}", role = "{role}", hash = "{hashed}", sites = [{listed}] }}'


def _ask(prompt: str) -> str:
    """One answer from the terminal."""
    return input(prompt).strip()


def _role(given: str | None) -> str:
    """--role, or asked for on a terminal; viewer when nothing is said (the least a mistake can do)."""
    if given:
        return given
    if not sys.stdin.isatty():
        raise SystemExit("passwd: give --role viewer|operator|admin (standard input is not a terminal)")
    answer = _ask(f"Role ({', '.join(ROLES)}) [viewer]: ") or "viewer"
    if answer not in ROLES:
        raise SystemExit(f"passwd: the role is one of {', '.join(ROLES)}")
    return answer


def _sites(given: list[str] | None) -> list[str]:
    """--site (repeated), or asked for on a terminal: the sites a token is limited to; none for all."""
    if given is not None or not sys.stdin.isatty():
        return given or []
    answer = _ask("Limit to sites (comma-separated; empty for every site): ")
    return [site.strip() for site in answer.split(",") if site.strip()]


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("passwd: the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    """Print the config line (and, for a token, the token itself)."""
    parser = argparse.ArgumentParser(prog="python -m vesper_web.passwd", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["user", "token"])
    parser.add_argument("name", help="1-64 characters of A-Z a-z 0-9 _ . @ -")
    parser.add_argument("--role", choices=ROLES, help="asked for on a terminal")
    parser.add_argument("--site", action="append", help="a token only: limit it to this site (repeat for more)")
    args = parser.parse_args(argv)
    if not re.fullmatch(NAME, args.name):
        parser.error("name: 1-64 characters of A-Z a-z 0-9 _ . @ -")
    if args.kind == "user" and args.site:
        parser.error("--site: only a token may be limited to sites")
    role = _role(args.role)
    if args.kind == "token":
        sites = _sites(args.site)
        token, line = new_token(args.name, role)
        if sites:
            line = toml_entry(args.name, role, token_hash(token), sites)
        print("line 1: the token for the script (send it as Authorization: Bearer); line 2: for [auth] tokens",
              file=sys.stderr)  # fmt: skip
        print(token)
        print(line)
        return 0
    password = _read_password()
    if len(password) < MIN_PASSWORD:
        raise SystemExit(f"passwd: use at least {MIN_PASSWORD} characters")
    print("for [auth] users in config.toml:", file=sys.stderr)
    print(user_line(args.name, password, role))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
