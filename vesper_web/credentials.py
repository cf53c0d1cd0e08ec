"""The configured operators and API tokens, checked without telling anyone which part was wrong."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from shared.config import AuthConfig

MAX_PASSWORD = 1024  # scrypt of a megabyte is work an attacker should not get for free


class Credentials:
    """The configured users and tokens; every comparison takes the same time whatever matches."""

    def __init__(self, auth: AuthConfig) -> None:
        self.users = dict(entry.split(":", 1) for entry in auth.users)
        self.tokens = [(name, bytes.fromhex(h.removeprefix("sha256:"))) for name, h in
                       (entry.split(":", 1) for entry in auth.tokens)]  # fmt: skip
        self._dummy = ""

    def check_password(self, name: str, password: str) -> bool:
        """True for a configured user's right password; an unknown name costs the same hash time."""
        stored = self.users.get(name)
        if stored is not None:
            return check_password_hash(stored, password[:MAX_PASSWORD])
        if self.users:
            check_password_hash(self._dummy_hash(), password[:MAX_PASSWORD])
        return False

    def _dummy_hash(self) -> str:
        """A hash of nothing anyone knows, made like the first user's (same method, same cost)."""
        if not self._dummy:
            method = next(iter(self.users.values())).split("$", 1)[0]
            self._dummy = generate_password_hash(secrets.token_hex(16), method=method)
        return self._dummy

    def token_name(self, token: str) -> str | None:
        """The name of the token whose SHA-256 this is, or None."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for name, expected in self.tokens:  # no early exit
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    def fingerprint(self, name: str) -> str | None:
        """Ties a session to the user's current hash: changing the password ends old sessions."""
        stored = self.users.get(name)
        return hashlib.sha256(stored.encode()).hexdigest()[:16] if stored else None
