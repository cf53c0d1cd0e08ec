"""The registry as CSV (§7): the import's parser with per-line results, and the export, safe in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.store.registry import FIELDS
from shared.topics import is_valid_device_id
from vesper_web.registry_rules import MAX_ECHO, RULES, FieldError, text

HEADER = ("id", *FIELDS)
STATUS = ("health", "liveness", "last_seen", "active_alerts")  # exported; an import ignores them (round trip)
EXPORT_COLUMNS = (*HEADER, *STATUS)
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet may run a cell starting with one of these
NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


@dataclass
class Parsed:
    """An import's valid lines as (id, *values of columns) and its refused ones as {"line", "error"}."""

    columns: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def escape(cell: str) -> str:
    """Defuse a formula: a leading ' before a trigger (also before quotes that precede one), so unescape undoes it."""
    return "'" + cell if cell.lstrip("'").startswith(FORMULA) else cell


def unescape(cell: str) -> str:
    """Undo escape (an export imported again is unchanged)."""
    return cell[1:] if cell.startswith("'") and cell[1:].lstrip("'").startswith(FORMULA) else cell


def _columns(header: list[str] | None) -> list[str]:
    """An import's header: id and any of the fields (and the export's status columns), each once; else FieldError."""
    names = [name.strip() for name in header or []]
    for name in names:
        if name not in EXPORT_COLUMNS:
            raise FieldError("header", f"unknown column {name[:MAX_ECHO]!r}; the columns are {','.join(HEADER)}")
    if "id" not in names or len(set(names)) != len(names):
        raise FieldError("header", f"each column once, id among them: {','.join(HEADER)}")
    return names


def _value(column: str, cell: str) -> Any:
    """One cell as its field stores it."""
    cell = unescape(cell)
    if column == "tags":
        return RULES["tags"]([tag for tag in cell.split(" ") if tag])
    if column == "heartbeat_timeout_s":
        if cell.strip() == "":
            return None
        if not NUMBER.fullmatch(cell.strip()):
            raise FieldError(column, "a number of seconds, or empty")
        return RULES[column](float(cell))
    return text(column, cell)


def _row(names: list[str], cells: list[str]) -> tuple[Any, ...]:
    """A line as (id, *values in header order except id)."""
    if len(cells) != len(names):
        raise FieldError("line", f"{len(cells)} fields where the header has {len(names)}")
    values = {name: cell for name, cell in zip(names, cells, strict=True) if name not in STATUS}
    device_id = unescape(values.pop("id"))
    if not is_valid_device_id(device_id):
        raise FieldError("id", "1-64 characters of A-Z a-z 0-9 _ . : -")
    return (device_id, *(_value(column, cell) for column, cell in values.items()))


def _records(reader: Iterator[list[str]], lines: Callable[[], int]) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(first line number, cells or the csv module's error) of each record after the header; blank lines skipped."""
    end = lines()
    while True:
        try:
            cells: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells = exc
        start, end = end + 1, lines()
        if cells != []:
            yield start, cells


def parse(body: str) -> Parsed:
    """Every line checked on its own; a bad header is a FieldError for the whole import."""
    reader = csv.reader(io.StringIO(body.removeprefix("\ufeff"), newline=""))
    try:
        names = _columns(next(reader, None))
    except csv.Error as exc:
        raise FieldError("header", str(exc)) from exc
    parsed = Parsed([name for name in names if name in FIELDS])
    first: dict[str, int] = {}
    for line, cells in _records(reader, lambda: reader.line_num):
        try:
            if isinstance(cells, csv.Error):
                raise FieldError("csv", str(cells))
            row = _row(names, cells)
            if row[0] in first:
                raise FieldError("id", f"already given on line {first[row[0]]}")
        except FieldError as exc:
            parsed.rejected.append({"line": line, "error": str(exc)})
            continue
        first[row[0]] = line
        parsed.rows.append(row)
    return parsed


def _number(value: float | None) -> str:
    """A timeout as a spreadsheet shows it: 90, not 90.0."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def export(devices: list[dict[str, Any]]) -> str:
    """The fleet as CSV text: HEADER's columns plus health, liveness, last_seen, active_alerts."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for d in devices:
        cells = (d["id"], d["name"], d["site"], " ".join(d["tags"]), d["notes"], _number(d["heartbeat_timeout_s"]),
                 d["health"], d["liveness"], d["last_seen"], d["active_alerts"])  # fmt: skip
        writer.writerow([escape("" if cell is None else str(cell)) for cell in cells])
    return out.getvalue()
