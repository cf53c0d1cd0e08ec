"""[auth] entries with roles and sites (§14), as shared/accounts.py reads them and `python -m vesper_web.passwd`
prints them: lines written before roles are admins, tables, sites for tokens only, and an error that never
echoes the entry (it may be a pasted password).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from shared import accounts
from shared import config as config_mod
from shared.accounts import Account
from shared.config import ConfigError
from tests.support import ROOT
from vesper_web import passwd
from vesper_web.credentials import Credentials
from vesper_web.passwd import token_hash

SECRET = "hunter2-pasted-by-mistake"
PW_HASH = generate_password_hash("correct horse battery", method="pbkdf2:sha256:1000")
TOKEN_HASH = token_hash("vsp_some_token")


@pytest.mark.parametrize(
    ("key", "entry", "expected"),
    [
        ("auth.users", f"alice:{PW_HASH}", Account("alice", "admin", PW_HASH)),  # before roles: an admin
        ("auth.users", f"bob:viewer:{PW_HASH}", Account("bob", "viewer", PW_HASH)),
        ("auth.users", f"carol:operator:{PW_HASH}", Account("carol", "operator", PW_HASH)),
        ("auth.tokens", f"ci:{TOKEN_HASH}", Account("ci", "admin", TOKEN_HASH)),
        ("auth.tokens", f"ci:viewer:{TOKEN_HASH}", Account("ci", "viewer", TOKEN_HASH)),
        ("auth.users", {"name": "dan", "role": "operator", "hash": PW_HASH}, Account("dan", "operator", PW_HASH)),
        ("auth.users", {"name": "eve", "hash": PW_HASH}, Account("eve", "admin", PW_HASH)),
        (
            "auth.tokens",
            {"name": "acme", "role": "viewer", "hash": TOKEN_HASH, "sites": ["north", "St Mary's", "north"]},
            Account("acme", "viewer", TOKEN_HASH, ("north", "St Mary's")),  # once each, in order
        ),
    ],
)
def test_entries(key: str, entry: Any, expected: Account) -> None:
    assert accounts.parse(key, [entry]) == (expected,)


@pytest.mark.parametrize(
    ("key", "entries", "named"),
    [
        ("auth.users", f"alice:boss:{PW_HASH}", "auth.users[0]"),  # not a role: no hash after it
        ("auth.users", f"alice:{SECRET}", "auth.users[0]"),  # a password, not its hash
        ("auth.tokens", f"ci:{PW_HASH}", "auth.tokens[0]"),  # a user's hash among the tokens
        ("auth.tokens", f"c i:viewer:{TOKEN_HASH}", "auth.tokens[0]"),
        ("auth.users", {"name": "a", "role": SECRET, "hash": PW_HASH}, "auth.users[0].role"),
        ("auth.users", {"name": "a", "hash": SECRET}, "auth.users[0].hash"),
        ("auth.users", {"name": SECRET + "/", "hash": PW_HASH}, "auth.users[0].name"),
        ("auth.users", {"name": "a", "hash": PW_HASH, "sites": ["north"]}, "auth.users[0].sites"),  # tokens only
        ("auth.tokens", {"name": "a", "hash": TOKEN_HASH, "sites": []}, "auth.tokens[0].sites"),
        ("auth.tokens", {"name": "a", "hash": TOKEN_HASH, "sites": SECRET}, "auth.tokens[0].sites"),
        ("auth.tokens", {"name": "a", "hash": TOKEN_HASH, "sites": [SECRET, ""]}, "auth.tokens[0].sites"),
        ("auth.tokens", {"name": "a", "hash": TOKEN_HASH, "sites": ["s" * 129]}, "auth.tokens[0].sites"),
        ("auth.tokens", {"name": "a", "hash": TOKEN_HASH, "password": SECRET}, "auth.tokens[0].password"),
        ("auth.tokens", 42, "auth.tokens[0]"),
    ],
)
def test_a_bad_entry_names_its_key_and_never_echoes_it(key: str, entries: Any, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_mod.from_dict({"auth": {key.split(".")[1]: [entries]}})
    assert f"config key {named}:" in str(raised.value)
    assert SECRET not in str(raised.value) and PW_HASH not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("users", [f"alice:{PW_HASH}", {"name": "alice", "role": "viewer", "hash": PW_HASH}]),
        ("tokens", [f"ci:viewer:{TOKEN_HASH}", f"ci:admin:{token_hash('another')}"]),
        ("tokens", f"ci:{TOKEN_HASH}"),  # a string, not a list
    ],
)
def test_names_are_unique_and_entries_a_list(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"config key auth.{key}:"):
        config_mod.from_dict({"auth": {key: value}})


def test_a_user_and_a_token_may_share_a_name() -> None:
    cfg = config_mod.from_dict({"auth": {"users": [f"ci:{PW_HASH}"], "tokens": [f"ci:viewer:{TOKEN_HASH}"]}})
    assert (cfg.auth.users[0].role, cfg.auth.tokens[0].role) == ("admin", "viewer")


def test_roles_are_ordered() -> None:
    assert [accounts.rank(role) for role in accounts.ROLES] == [0, 1, 2]
    assert accounts.ROLES == ("viewer", "operator", "admin")


# --- python -m vesper_web.passwd ------------------------------------------------------------------


def run_passwd(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it (standard input not a terminal)."""
    command = [sys.executable, "-m", "vesper_web.passwd", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def auth_from_toml(key: str, line: str) -> config_mod.AuthConfig:
    """The [auth] a config file holding the printed line says (read as TOML, as config.toml is)."""
    return config_mod.from_dict(tomllib.loads(f"[auth]\n{key} = [\n  {line},\n]\n")).auth


def quoted(line: str) -> str:
    """A printed "name:role:hash" line as it is pasted into the TOML list: a basic string."""
    return '"' + line + '"'


def test_a_site_limited_token_is_a_table_the_config_accepts() -> None:
    site = 'St Mary\'s "old" tower \\ ü'
    done = run_passwd("token", "acme", "--role", "viewer", "--site", "north", "--site", site)
    assert done.returncode == 0, done.stderr
    secret, line = done.stdout.splitlines()
    assert line.startswith("{ ") and line.endswith(" }")
    auth = auth_from_toml("tokens", line)
    assert Credentials(auth).token(secret) == Account("acme", "viewer", token_hash(secret), ("north", site))


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_a_token_for_every_site_is_a_line(role: str) -> None:
    done = run_passwd("token", "ci", "--role", role)
    secret, line = done.stdout.splitlines()
    assert line == f"ci:{role}:{token_hash(secret)}"
    assert Credentials(auth_from_toml("tokens", quoted(line))).token(secret) == Account("ci", role, token_hash(secret))


def test_a_user_line_with_its_role() -> None:
    done = run_passwd("user", "ops", "--role", "viewer", stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    auth = auth_from_toml("users", quoted(done.stdout.strip()))
    assert auth.users[0].role == "viewer" and Credentials(auth).check_password("ops", "correct horse battery")
    assert "correct horse battery" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("user", "ops", "--site", "north", "--role", "viewer"), "only a token may be limited to sites"),
        (("token", "ci"), "give --role"),  # no terminal to ask on: never a silent default
        (("token", "ci", "--role", "boss"), "invalid choice"),
    ],
)
def test_refusals(args: tuple[str, ...], says: str) -> None:
    done = run_passwd(*args, stdin="correct horse battery\n")
    assert done.returncode != 0 and says in done.stderr and done.stdout == ""


def test_on_a_terminal_it_asks_for_the_role_and_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["operator", " north , south ,"])
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(passwd, "_ask", lambda prompt: next(answers))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert passwd.main(["token", "acme"]) == 0
    secret, line = out.getvalue().splitlines()
    assert auth_from_toml("tokens", line).tokens == (
        Account("acme", "operator", token_hash(secret), ("north", "south")),
    )


def test_on_a_terminal_the_role_defaults_to_viewer_and_refuses_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(passwd, "_ask", lambda prompt: "")
    assert passwd._role(None) == "viewer" and passwd._sites(None) == []
    monkeypatch.setattr(passwd, "_ask", lambda prompt: "root")
    with pytest.raises(SystemExit, match="the role is one of"):
        passwd._role(None)
