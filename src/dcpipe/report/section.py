"""What every part of the report is made of: a Section (one paper item: a table, its figures, its metrics), the
budget a cell ran at, and the formatting of numbers shared by every table (so "± 0.0" from one model never
appears, and no Python value is ever printed as its repr)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Budget:
    """What one cell cost: K condensation iterations (None for coresets), sets (or runs, coresets,
    architectures: `unit`) x models each, training epochs, and `setting` for anything else that differs."""

    iterations: int | None
    sets: int
    models: int | None
    epochs: int | None
    unit: str = "set"
    setting: str = ""

    def text(self) -> str:
        parts = [self.setting] if self.setting else []
        if self.iterations is not None:
            parts.append(f"K = {self.iterations}")
        count = f"{self.sets} {plural(self.unit, self.sets)}"
        parts.append(count if self.models is None else f"{count} × {self.models} {plural('model', self.models)}")
        if self.epochs is not None:
            parts.append(f"{self.epochs} epochs")
        return ", ".join(parts)


CELL_PAGE = "cells/{dataset}_ipc{ipc}_{method}_set{set}.html"  # one page per set, relative to reports/
STATUS_KINDS = {"reproduced": "reproduced", "outside the paper's band": "outside", "reduced budget": "reduced",
                "not run here": "not-run"}  # status text (before any ':') -> its CSS class and badge


def status_kind(status: str) -> str:
    """'reduced budget: K = 80, ...' -> 'reduced'; a status outside the four (e.g. 'no reference') -> ''."""
    return STATUS_KINDS.get(status.split(":")[0], "")


@dataclass(frozen=True)
class Comparison:
    """One cell of ours beside the paper's number, for the summary at the top of the report. `ours_value` and
    `paper_value` are (mean, std) in the table's unit (None where there is none) for the first screen's figure;
    `href` is the cell's page (reports/cells/...) where it has one."""

    table: str
    cell: str
    ours: str
    paper: str
    status: str
    ours_value: tuple | None = None
    paper_value: tuple | None = None
    href: str = ""

    @property
    def kind(self) -> str:
        return status_kind(self.status)

    @property
    def detail(self) -> str:
        """What follows the status's kind: the budget of a reduced cell, why a cell did not run."""
        return self.status.partition(":")[2].strip()


class Cell(str):
    """A table cell's text with what the HTML page adds to it: its status's colour, a hover title (the budget) and
    a link (the cell's page). It is a str, so Markdown, tests and sorting see the text alone."""

    status: str = ""
    title: str = ""
    href: str = ""
    sort: str = ""  # what tablesort orders by, where the text alone would mislead ('70.3 ± 0.6 / 70.5 ± 0.6')

    def __new__(cls, text, status: str = "", title: str = "", href: str = "", sort: str = ""):
        c = super().__new__(cls, text)
        c.status, c.title, c.href, c.sort = status, title, href, sort
        return c

    @property
    def numeric(self) -> bool:
        """Right-aligned: a number, possibly with its spread or unit ('70.3 ± 0.6', '12 %'), not a hash."""
        return bool(re.match(r"[-+−–]?\d[\d.,]*(%|×10\^-?\d+)?(?=$| ±| /| \(| %| \w+ / )", self)) or self == "–"


@dataclass(frozen=True)
class Details:
    """A folded table (HTML <details>): provenance, commands and departures of one run, opened when asked for."""

    summary: str
    rows: list[tuple[str, str]]


@dataclass
class Section:
    """One paper item as the report shows it. `key` names its detail file (reports/tables/<key>.json); header
    and every row have the same width; figures are paths of PNGs written under reports/figures/."""

    key: str
    title: str
    note: str
    header: list[str]
    rows: list[list[str]]
    figures: list[Path] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    details: list[Details] = field(default_factory=list)

    def __post_init__(self):
        bad = [r for r in self.rows if len(r) != len(self.header)]
        if bad:
            raise ValueError(f"{self.title}: row {bad[0]} has {len(bad[0])} cells, the header {len(self.header)}")
        self.rows = [[c if isinstance(c, Cell) else Cell(str(c)) for c in r] for r in self.rows]


def plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def stat(mean, std, n: int | None = None, unit: str = "model") -> str:
    """A mean over n trained models (or runs...): '78.3 (1 model)' when there is no spread to show, else
    '78.3 ± 0.4'."""
    if missing(mean):
        return "–"
    if n == 1:
        return f"{mean:.1f} (1 {unit})"
    return f"{mean:.1f}" if missing(std) else f"{mean:.1f} ± {std:.1f}"


def ref(value) -> str:
    """A published (mean, std) pair, or '–' where the paper has none."""
    return "–" if value is None else stat(value[0], value[1])


def ours_paper(ours: str, paper: str) -> str:
    return f"{ours} / {paper}"


def per_ipc(mapping: dict, fmt=str) -> str:
    """{'1': 80, '10': 3} -> 'K-like' prose: '80 (IPC 1), 3 (IPC 10)'."""
    return ", ".join(f"{fmt(v)} (IPC {k})" for k, v in mapping.items())


def words(values) -> str:
    """A list for prose: 'a, b and c'."""
    values = [str(v) for v in values]
    return " and ".join(values) if len(values) < 3 else ", ".join(values[:-1]) + " and " + values[-1]


def number(v, spec: str = ".1f") -> str:
    """A scalar for a table cell; '–' for a missing one; 'pow10' spells 50000 as 5×10^4."""
    if missing(v):
        return "–"
    if spec == "pow10" and v:
        e = int(math.floor(math.log10(v)))
        m = v / 10**e
        return f"{m:g}×10^{e}" if m != 1 else f"10^{e}"
    return format(v, spec)


def budget_note(budgets: dict[str, Budget]) -> str:
    """'Budgets: K = 80, 1 set × 3 models, 300 epochs: DC at IPC 1; ...' for cells labelled by `budgets`' keys,
    grouped so that a caption names each distinct budget once."""
    if len({b.text() for b in budgets.values()}) == 1:
        return f"Budget of every cell: {next(iter(budgets.values())).text()}."
    return (f"Budgets: {len({b.text() for b in budgets.values()})} differ between cells; each cell's is on hover, "
            "and all are listed under the table.")


def budget_details(budgets: dict[str, Budget]) -> list[Details]:
    """Where cells ran at different budgets, the list of them (budget_note's caption points to it), folded."""
    groups: dict[str, list[str]] = {}
    for label, b in budgets.items():
        groups.setdefault(b.text(), []).append(label)
    return [Details("Budgets of the cells", [(text, ", ".join(labels)) for text, labels in groups.items()])] \
        if len(groups) > 1 else []
