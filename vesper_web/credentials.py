"""The configured operators and API tokens, checked without telling anyone which part was wrong."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from shared.accounts import Account
from shared.config import AuthConfig

MAX_PASSWORD = 1024  # scrypt of a megabyte is work an attacker should not get for free


class Credentials:
    """The configured users and tokens; every comparison takes the same time whatever matches."""

    def __init__(self, auth: AuthConfig) -> None:
        self.users = {account.name: account for account in auth.users}
        self.tokens = [(account, bytes.fromhex(account.hash.removeprefix("sha256:"))) for account in auth.tokens]
        self._dummy = ""

    def check_password(self, name: str, password: str) -> bool:
        """True for a configured user's right password; an unknown name costs the same hash time."""
        account = self.users.get(name)
        if account is not None:
            return check_password_hash(account.hash, password[:MAX_PASSWORD])
        if self.users:
            check_password_hash(self._dummy_hash(), password[:MAX_PASSWORD])
        return False

    def _dummy_hash(self) -> str:
        """A hash of nothing anyone knows, made like the first user's (same method, same cost)."""
        if not self._dummy:
            method = next(iter(self.users.values())).hash.split("$", 1)[0]
            self._dummy = generate_password_hash(secrets.token_hex(16), method=method)
        return self._dummy

    def token(self, token: str) -> Account | None:
        """The token whose SHA-256 this is, or None."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for account, expected in self.tokens:  # no early exit
            if hmac.compare_digest(digest, expected):
                found = account
        return found

    def user(self, name: str) -> Account | None:
        """The configured user called name, or None."""
        return self.users.get(name)

    def fingerprint(self, name: str) -> str | None:
        """Ties a session to the user's current hash and role: a new password or role ends old sessions."""
        account = self.users.get(name)
        return hashlib.sha256(f"{account.role}:{account.hash}".encode()).hexdigest()[:16] if account else None
