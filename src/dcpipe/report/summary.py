"""'What is reproduced': one line per cell that has a paper number, with one status. A cell is judged against the
paper's band only when it ran at the paper's protocol (paper.PROTOCOL); otherwise its own budget is the status,
whatever its accuracy, because a reduced-budget number neither confirms nor refutes the paper."""

from __future__ import annotations

import re

from .. import paper
from .collect import budget_of
from .section import CELL_PAGE, Budget, Cell, Comparison, Section, ours_paper, ref, stat

REPRODUCED = "reproduced"
OUTSIDE = "outside the paper's band"
REDUCED = "reduced budget"
NOT_RUN = "not run here"
# What this machine's offline mirrors lack (shared/data/MANIFEST.md): why the paper's cells on them are not run.
UNAVAILABLE = {"SVHN": "SVHN not available offline", "CIFAR10": "full CIFAR-10 not available offline",
               "CIFAR100": "full CIFAR-100 not available offline"}


def status(ours: float | None, paper: tuple | None, budget: Budget | None, protocol: Budget | None,
           not_run: str | None = None) -> str:
    """The status of one cell. `paper` is (mean, std) with std None where the paper gives none; `ours` is None
    for a cell that did not run here (`not_run` says why)."""
    if ours is None or budget is None:
        return f"{NOT_RUN}: {not_run or 'not in this parameter file'}"
    if budget != protocol:
        return f"{REDUCED}: {budget.text()}"
    mean, std = paper
    if std is None:
        return f"at the paper's protocol ({'equal' if ours == mean else 'differs'}; the paper gives no spread)"
    # the tolerance keeps a cell exactly on the band's edge inside (71.7 - 70.5 is 1.2000000000000028 in floats)
    return REPRODUCED if abs(ours - mean) <= 2 * std + 1e-9 else OUTSIDE


def why_not_run(dataset: str) -> str:
    return UNAVAILABLE.get(dataset, "not in this parameter file")


def summary_section(sections: list[Section]) -> Section:
    """The table at the top of the report: every comparison of every section, once (main table and DC Table 1
    show the same cells), in page order."""
    seen, rows = set(), []
    for s in sections:
        for c in s.comparisons:
            if (c.table, c.cell) not in seen:
                seen.add((c.table, c.cell))
                rows.append(c)
    # judged cells first: what a one-minute reader looks for
    rows.sort(key=lambda c: (0 if c.status in (REPRODUCED, OUTSIDE) else 1 if c.status.startswith(REDUCED) else 2))
    counts: dict[str, int] = {}
    for c in rows:
        kind = c.status.split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
    note = ("Every cell of this report that has a number in the papers: ours, the paper's, and one status. "
            f"{REPRODUCED.capitalize()} / {OUTSIDE}: the cell ran at the paper's protocol (K = 1000 condensation "
            "iterations, 5 sets × 20 models, 300 training epochs, MNIST 1000 with augmentation) and lies inside / "
            f"outside the paper's mean ± 2 std. {REDUCED.capitalize()}: the cell ran at the budget shown, so it "
            f"is not judged. {NOT_RUN.capitalize()}: why. Counts: "
            + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    table = [[c.table, *split_label(c.cell), Cell(c.ours, href=c.href, sort=_mean(c.ours_value)), c.paper,
              Cell(c.status.split(":")[0], c.kind), c.detail] for c in rows]
    return Section("summary", "What is reproduced", note,
                   ["Table", "Dataset", "IPC", "Method", "Ours", "Paper", "Status", "Budget or reason"],
                   table, metrics={"cells": counts}, comparisons=rows)


LABEL = re.compile(r"(?P<dataset>\w+), IPC (?P<ipc>\d+(?:, \d+)*)(?:, (?P<rest>.+)| \((?P<count>.+)\))?$")


def split_label(label: str) -> list[str]:
    """'MNIST, IPC 1, DC (protocol run x)' -> ['MNIST', '1', 'DC (protocol run x)']: the summary's filter columns
    (a label of another shape, e.g. a NAS row's, stays whole in the last)."""
    m = LABEL.match(label)
    if not m:
        return ["", "", label]
    return [m["dataset"], m["ipc"], m["rest"] or m["count"] or ""]


def _mean(value) -> str:
    return "" if value is None else f"{value[0]:.4g}"


def protocol_budget(dataset: str, synthetic: bool, method: str | None = None, followup: bool = False) -> Budget:
    """The budget a cell of DC Table 1 / Table 2 ran at in the DC paper, (followup) a cell of the follow-up's
    Tables 1-3 in that paper (2 sets x 50 networks), or (method DSA, DM) the successors' own K and epochs."""
    p = paper.FOLLOWUP_PROTOCOL if followup else paper.PROTOCOL
    own = paper.SUCCESSOR_PROTOCOL.get(method, {})
    return Budget(iterations=own.get("iterations", p["iterations"]) if synthetic else None, sets=p["sets"],
                  models=p["models_per_set"], epochs=own.get("epochs", paper.protocol_epochs(dataset)))


def cell_href(row: dict | None) -> str:
    """The page of set 0 of an evaluated cell (a collect.summarise row), relative to reports/; '' for none."""
    if row is None or "method" not in row:
        return ""
    return CELL_PAGE.format(dataset=row["dataset"], ipc=int(row["ipc"]), method=row["method"], set=0)


def compare(table: str, label: str, dataset: str, row: dict | None, paper_ref, protocol: Budget) -> Comparison:
    """A Comparison of one evaluated cell (a collect.summarise row, None where it did not run)."""
    budget = None if row is None else budget_of(row)
    ours = None if row is None else row["mean"]
    return Comparison(table, label, "–" if row is None else stat(row["mean"], row["std"], row["n_models"]),
                      ref(paper_ref), status(ours, paper_ref, budget, protocol, why_not_run(dataset)),
                      ours_value=None if row is None else (row["mean"], row["std"]), paper_value=paper_ref,
                      href=cell_href(row))


def table_cell(row: dict | None, paper_ref=None, comparison: Comparison | None = None, paper: bool = True) -> Cell:
    """'ours / paper' (or ours alone) in a paper-layout table: coloured by the comparison's status, the budget it
    ran at on hover (never in the text), linked to the cell's page."""
    ours = "–" if row is None else stat(row["mean"], row["std"], row["n_models"])
    if row is not None and row.get("labels") == "soft":  # trained on soft labels; their argmax's score beside
        ours += f" (soft labels; hard-label argmax {stat(row['hard_mean'], row['hard_std'], row['n_models'])})"
    kind = comparison.kind if comparison else ""
    title = budget_of(row).text() if row is not None else (comparison.detail if comparison else "")
    return Cell(ours_paper(ours, ref(paper_ref)) if paper else ours, kind, title, cell_href(row),
                sort="" if row is None else f"{row['mean']:.4g}")


def not_run(table: str, published: dict, ran: set) -> list[Comparison]:
    """One line per dataset of a paper table ({dataset: {ipc: ...}}) whose cells (some IPCs) did not run here."""
    out = []
    for d, by_ipc in published.items():
        left = [i for i in by_ipc if (d, int(i)) not in ran]
        if left:
            n = sum(len(by_ipc[i]) for i in left)
            out.append(Comparison(table, f"{d}, IPC {', '.join(map(str, left))} ({n} cells)", "–", "see the paper",
                                  status(None, None, None, None, why_not_run(d))))
    return out
