"""Make the lines for config.toml's [auth]: `python -m vesper_web.passwd user NAME | token NAME`.

`user NAME` asks for a password (twice on a terminal; one line from standard input otherwise) and
prints "NAME:<scrypt hash>" for `users`. `token NAME` prints two lines: a new random API token
(for the script that sends it; it is stored nowhere) and "NAME:sha256:<hex>" for `tokens`.
Tokens are 256 random bits, so a fast hash is enough; passwords are chosen by people: scrypt.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import secrets
import sys

from werkzeug.security import generate_password_hash

from shared.config import NAMED_TOKEN_HASH

MIN_PASSWORD = 10
TOKEN_PREFIX = "vsp_"


def token_hash(token: str) -> str:
    """The form a token is stored in: sha256:<hex>."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def user_line(name: str, password: str) -> str:
    """A `users` entry for name and password."""
    return f"{name}:{generate_password_hash(password)}"


def new_token(name: str) -> tuple[str, str]:
    """A fresh token and its `tokens` entry."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, f"{name}:{token_hash(token)}"


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
    args = parser.parse_args(argv)
    if not NAMED_TOKEN_HASH.fullmatch(f"{args.name}:sha256:{'0' * 64}"):
        parser.error("name: 1-64 characters of A-Z a-z 0-9 _ . @ -")
    if args.kind == "token":
        token, line = new_token(args.name)
        print("line 1: the token for the script (send it as Authorization: Bearer); line 2: for [auth] tokens",
              file=sys.stderr)  # fmt: skip
        print(token)
        print(line)
        return 0
    password = _read_password()
    if len(password) < MIN_PASSWORD:
        raise SystemExit(f"passwd: use at least {MIN_PASSWORD} characters")
    print("for [auth] users in config.toml:", file=sys.stderr)
    print(user_line(args.name, password))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
