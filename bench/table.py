"""The bench's one table: each figure beside its same-run yardstick, the ratio, the target, and the generators' CPU."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

GENERATOR_LIMIT = 80.0  # % of one core: past it a load generator, not Vesper, may be what was measured
TITLES = ("", "figure", "value", "yardstick (same run)", "ratio", "target", "generators (% of a core)", "")
RIGHT = {2, 4}  # value and ratio columns


@dataclass
class Table:
    """Rows of cells; printed once at the end."""

    rows: list[tuple[str, ...]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    verdicts: bool = True  # the targets are for the full sizes: a quick run only shows them

    def add(
        self,
        section: str,
        figure: str,
        value: str,
        *,
        yard: str = "",
        ratio: float | None = None,
        target: str = "",
        met: bool | None = None,
        gens: dict[str, float] | None = None,
    ) -> None:
        """One figure; with `met`, a verdict, unless a generator was too busy for the figure to mean anything."""
        text = "" if ratio is None else f"{ratio:.2f}"
        self.rows.append((section, figure, value, yard, text, target, shares(gens), self.verdict(met, gens)))
        print(f"  {section}  {figure}: {value}  [{yard}]", file=sys.stderr, flush=True)

    def verdict(self, met: bool | None, gens: dict[str, float] | None) -> str:
        """met / MISSED, or 'not measurable here' when a generator used over GENERATOR_LIMIT of a core."""
        if met is None or not self.verdicts:
            return ""
        if gens and max(gens.values()) > GENERATOR_LIMIT:
            return "not measurable here"
        return "met" if met else "MISSED"

    def print(self, header: list[str], notes: list[str]) -> None:
        """The header, the rows (a blank line between sections), the notes."""
        widths = [max(len(r[i]) for r in [TITLES, *self.rows]) for i in range(len(TITLES))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.rjust(widths[i]) if i in RIGHT else c.ljust(widths[i]) for i, c in enumerate(cells))

        for text in header:
            print(text)
        print()
        print(line(TITLES).rstrip())
        last = None
        for row in self.rows:
            if last is not None and row[0] != last:
                print()
            last = row[0]
            print(line(row).rstrip())
        print()
        for note in notes:
            print(note)


def shares(gens: dict[str, float] | None) -> str:
    """'clients 45, 43; publisher 6' from {name: % of a core} (names ending in a digit grouped)."""
    if not gens:
        return ""
    groups: dict[str, list[str]] = {}
    for name, share in gens.items():
        groups.setdefault(name.rstrip("0123456789"), []).append(f"{share:.0f}")
    return "; ".join(f"{name} {', '.join(values)}" for name, values in groups.items())
