"""What a reader sees before scrolling: how many cells are reproduced, outside the paper's band, at a reduced budget
or not run (badges), and one figure of every cell with a paper number, ours against the paper's mean ± 2 std."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .section import STATUS_KINDS, Comparison
from .sections.figures import plt, save

# one colour per status kind: the badges, the table cells (CSS in the page) and the figure's dots agree
COLOURS = {"reproduced": "#1a7f37", "outside": "#cf222e", "reduced": "#9a6700", "not-run": "#6e7781"}
RUNS = "Protocol, headline and GPU-check runs"
RUN_TABLES = ("(protocol run)", "(headline run)", "(make gpu-check)")  # not "Follow-up Table 3 (variants study)"
LABELS = {kind: text for text, kind in STATUS_KINDS.items()}


@dataclass(frozen=True)
class Badge:
    kind: str
    label: str
    count: int


def badges(comparisons: list[Comparison]) -> list[Badge]:
    counts = {kind: 0 for kind in COLOURS}
    for c in comparisons:
        if c.kind:
            counts[c.kind] += 1
    return [Badge(k, LABELS[k], n) for k, n in counts.items()]


def short_label(c: Comparison) -> str:
    """'FashionMNIST, IPC 10, DC (protocol run x; departs in ...)' -> 'FMNIST 10 DC': an axis tick."""
    text = re.sub(r" \(.*\)$", "", c.cell).replace("FashionMNIST", "FMNIST").replace(", IPC ", " ")
    text = re.sub(r", C (\S+), T (\S+)", r" \1→\2", text).replace(", ", " ")
    return text + (" (headline)" if "headline" in c.table else "")  # beside the same cell's protocol run


def plotted(comparisons: list[Comparison]) -> list[Comparison]:
    """The cells the figure draws: ours and the paper's both accuracies (%)."""
    return [c for c in comparisons if c.ours_value is not None and c.paper_value is not None]


def panels(comparisons: list[Comparison]) -> dict[str, list[Comparison]]:
    """The figure's panels: one per paper table, in page order; the runs of dcpipe record-protocol, the headline
    and the GPU check share one."""
    groups: dict[str, list[Comparison]] = {}
    for c in plotted(comparisons):
        groups.setdefault(RUNS if c.table.endswith(RUN_TABLES) else c.table, []).append(c)
    return groups


def ours_vs_paper(comparisons: list[Comparison], out: Path) -> Path:
    """One panel per paper table: per cell, the paper's mean ± 2 std as a grey band (a tick where the paper gives
    no spread) and ours as a dot with ± 1 std, coloured by status."""
    groups = panels(comparisons)
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(13.5, 4.6), sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": [max(len(g), 3) for g in groups.values()] or [1]})
    axes = axes[0]
    for ax, (table, group) in zip(axes, groups.items()):
        for x, c in enumerate(group):
            mean, std = c.paper_value[0], c.paper_value[1]
            if std is not None:
                ax.bar(x, 4 * std, bottom=mean - 2 * std, width=0.7, color="#d0d7de", zorder=1)
            ax.plot([x - 0.35, x + 0.35], [mean, mean], color="#57606a", lw=1, zorder=2)
            ours, spread = c.ours_value
            ax.errorbar(x, ours, yerr=spread if spread == spread else None, fmt="o", ms=4, lw=1, capsize=0,
                        color=COLOURS.get(c.kind, "#6e7781"), zorder=3)
        ax.set_xticks(range(len(group)), [short_label(c) for c in group], rotation=90, fontsize=6.5)
        ax.set_xlim(-0.7, len(group) - 0.3)
        ax.set_title(textwrap.fill(table, max(12, 3 * len(group))), fontsize=7.5)
        ax.grid(axis="y", color="#eaeef2", lw=0.6)
        ax.tick_params(axis="y", labelsize=7)
    axes[0].set_ylabel("test accuracy (%)", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color="#d0d7de", label="paper: mean ± 2 std")] + [
        plt.Line2D([], [], marker="o", ls="", color=COLOURS[k], label=f"ours: {LABELS[k]}")
        for k in ("reproduced", "outside", "reduced")]
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=7.5, frameon=False, bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return save(fig, out)


def figure_alt(comparisons: list[Comparison]) -> str:
    cells = plotted(comparisons)
    kinds = badges(cells)
    return (f"Ours against the paper for {len(cells)} cells, one panel per paper table: "
            + ", ".join(f"{b.count} {b.label}" for b in kinds if b.count) + ".")
