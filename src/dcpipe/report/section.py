"""What every part of the report is made of: a Section (one paper item: a table, its figures, its metrics), the
budget a cell ran at, and the formatting of numbers shared by every table (so "± 0.0" from one model never
appears, and no Python value is ever printed as its repr)."""

from __future__ import annotations

import math
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


@dataclass(frozen=True)
class Comparison:
    """One cell of ours beside the paper's number, for the summary at the top of the report."""

    table: str
    cell: str
    ours: str
    paper: str
    status: str


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

    def __post_init__(self):
        bad = [r for r in self.rows if len(r) != len(self.header)]
        if bad:
            raise ValueError(f"{self.title}: row {bad[0]} has {len(bad[0])} cells, the header {len(self.header)}")
        self.rows = [[str(c) for c in r] for r in self.rows]


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
    groups: dict[str, list[str]] = {}
    for label, b in budgets.items():
        groups.setdefault(b.text(), []).append(label)
    return "Budgets: " + "; ".join(f"{text}: {', '.join(labels)}" for text, labels in groups.items()) + "."
