"""The repository keeps its shape: small modules, SQL only in the store, no two test files of one name."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("shared", "vesper_ingest", "vesper_web")
MAX_LINES = 300
SQL = re.compile(r"""["'](SELECT|INSERT|UPDATE|DELETE|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|PRAGMA)\b""")


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small(path: Path) -> None:
    """No module over 300 lines: each is read in one sitting."""
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_sql_and_sqlite_only_in_the_store() -> None:
    """The store is the one owner of SQL, transactions and the database driver."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if "shared/store" not in path.as_posix()
        and (SQL.search(path.read_text()) or re.search(r"^\s*import sqlite3|sqlite3\.", path.read_text(), re.M))
    ]
    assert offenders == []


def test_no_two_test_files_share_a_name() -> None:
    """pytest's rootdir-relative names stay unambiguous, and a reader finds the one they mean."""
    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [name for name, n in names.items() if n > 1] == []
