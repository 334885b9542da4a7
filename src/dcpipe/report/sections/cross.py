"""DC Table 2 and appendix Tables T6-T10: the condensation network (rows, C) against the network trained on the
set (columns, T), as a table and a heat map per study, dataset and IPC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import paper, plan
from ...config import sections
from ..collect import Inputs, synthetic_meta
from ..section import Budget, Section, budget_details, budget_note, number
from ..summary import compare, protocol_budget, table_cell
from .figures import plt, save, sns

CROSS_TITLES = {
    "crossarch": ("DC Table 2: cross-architecture generalisation",
                  "Rows C: the network that condensed the set (BatchNorm with statistics of real data for VGG11BN "
                  "and ResNet18BN_AP, stride-2 convolutions as stride 1 + average pooling in ResNet18BN_AP; image "
                  "lr 0.01 for MLP; DC appendix A). Columns T: the network trained on it (instance norm in VGG11 and "
                  "ResNet18)."),
    "activation": ("DC Table T6: cross-activation", "AS / AR / AL: sigmoid / ReLU / LeakyReLU(0.01) ConvNet."),
    "pooling": ("DC Table T7: cross-pooling", "NP / MP / AP: no / max / average pooling ConvNet."),
    "normalization": ("DC Table T8: cross-normalisation",
                      "NN / BN / LN / IN / GN: none / batch / layer / instance / group(4) norm ConvNet; BatchNorm "
                      "uses real-data statistics while condensing and batch statistics when trained on the set."),
    "depth": ("DC Table T9: cross-depth", "D1..D4: ConvNet with 1..4 blocks."),
    "width": ("DC Table T10: cross-width", "W32..W256: ConvNet with 32..256 filters per block."),
}
CROSS_COLUMNS = ["study", "dataset", "ipc", "condense_model", "eval_model", "mean", "std", "n_models", "sets",
                 "models_per_set", "epochs", "iterations", "paper_mean", "paper_std", "seconds_per_model"]
KEYS = ["study", "dataset", "ipc", "condense_model", "eval_model"]


def summarise_cross(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (over all networks of all sets, as the paper) per (study, dataset, ipc, C, T), with its
    budget and the paper's number beside it."""
    if df.empty:
        return pd.DataFrame(columns=CROSS_COLUMNS)
    g = df.groupby(KEYS, sort=False)
    out = g["accuracy"].agg(mean="mean", n_models="count").reset_index()
    out["std"] = g["accuracy"].std(ddof=0).values
    out["sets"] = g["set"].nunique().values
    out["models_per_set"] = (df.groupby(KEYS + ["set"], sort=False)["model"].count()
                             .groupby(level=KEYS, sort=False).max().values)
    out["epochs"] = g["epochs"].first().values
    out["iterations"] = g["iterations"].first().values
    out["seconds_per_model"] = g["wall_seconds"].mean().values
    published = [paper.cross(*k) or (np.nan, np.nan) for k in out[KEYS].itertuples(index=False)]
    out["paper_mean"], out["paper_std"] = [r[0] for r in published], [r[1] for r in published]
    return out[CROSS_COLUMNS]


def cross_cell(summary: pd.DataFrame, study, dataset, ipc, c, t) -> dict | None:
    r = summary[(summary.study == study) & (summary.dataset == dataset) & (summary.ipc == int(ipc))
                & (summary.condense_model == c) & (summary.eval_model == t)]
    return None if r.empty else r.iloc[0].to_dict()


def condense_seconds(inputs: Inputs) -> dict:
    """Wall seconds per condensation iteration of each cross cell (set 0): {(study, dataset, ipc, C): seconds}."""
    return {(c["study"], c["dataset"], c["ipc"], c["model"]):
            synthetic_meta(inputs, {**c, "set": 0}).get("seconds_per_iteration", float("nan"))
            for c in plan.cross_cells(inputs.params)}


def cross_sections(summary: pd.DataFrame, params, seconds: dict | None = None, fig_dir: Path | None = None
                   ) -> list[Section]:
    """One 'C \\ T' table per cross study, dataset and IPC (ours / paper); with `seconds` (condense_seconds) a
    last column gives each C's condensation cost; with `fig_dir` each table comes with its heat map."""
    out = []
    set_methods = {(x["study"], x["dataset"], int(x["ipc"]), x["model"]): x["method"] for x in plan.cross_cells(params)}
    for spec in sections(params).studies:
        study = spec.name
        if not spec.cross:
            continue
        title, note = CROSS_TITLES[study]
        for d in spec.datasets:
            for i in spec.ipcs:
                rows, comparisons, budgets, metrics = [], [], {}, {}
                for c in spec.models:
                    row = [c]
                    for t in spec.eval_models:
                        r, theirs = cross_cell(summary, study, d, i, c, t), paper.cross(study, d, i, c, t)
                        if r is not None:  # the condensed set's method names its page (cells/...)
                            r["method"] = set_methods[(study, d, int(i), c)]
                        judged = None if theirs is None else compare(
                            title.split(":")[0], f"{d}, IPC {i}, C {c}, T {t}", d, r, theirs, protocol_budget(d, True))
                        row.append(table_cell(r, theirs, judged))
                        if judged is not None:
                            comparisons.append(judged)
                        if r is not None:
                            budgets[f"C {c}"] = Budget(int(r["iterations"]), int(r["sets"]),
                                                       int(r["models_per_set"]), int(r["epochs"]))
                            metrics[f"{c}_on_{t}"] = {"mean": round(r["mean"], 2), "std": round(r["std"], 2),
                                                      "n_models": int(r["n_models"])}
                    rows.append(row + ([number(seconds[(study, d, i, c)])] if seconds else []))
                figures = [heatmap(summary, study, d, i, spec.models, spec.eval_models,
                                   Path(fig_dir) / f"cross_{study}_{d}_ipc{i}.png")] if fig_dir else []
                caption = (f"ours / paper (the paper: MNIST, 1 img/cls only). {note} "
                           + (budget_note(budgets) if budgets else ""))
                out.append(Section(f"cross_{study}_{d}_ipc{i}", f"{title} ({d}, {i} img/cls)", caption.strip(),
                                   ["C \\ T"] + list(spec.eval_models) + (["C: s / iteration"] if seconds else []),
                                   rows, figures=figures, metrics=metrics, comparisons=comparisons,
                                   details=budget_details(budgets)))
    return out


def heatmap(summary, study: str, dataset: str, ipc: int, models, eval_models, out: Path) -> Path:
    """The C x T matrix of mean accuracies as a heat map (ours), beside the paper's where it has the cell."""
    def matrix(value):
        return pd.DataFrame([[value(c, t) for t in eval_models] for c in models], index=models, columns=eval_models,
                            dtype=float)

    ours = matrix(lambda c, t: (cross_cell(summary, study, dataset, ipc, c, t) or {"mean": np.nan})["mean"])
    theirs = matrix(lambda c, t: (paper.cross(study, dataset, ipc, c, t) or (np.nan,))[0])
    panels = [("ours", ours)] + ([("paper", theirs)] if theirs.notna().any().any() else [])
    size = 0.9 * len(eval_models) + 2
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), 0.6 * len(models) + 2), squeeze=False)
    for k, (ax, (name, m)) in enumerate(zip(axes[0], panels)):
        sns.heatmap(m, annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100, cbar=False, ax=ax,
                    annot_kws={"fontsize": 8})
        ax.set_title(f"{name}: {CROSS_TITLES[study][0].split(':')[0]}, {dataset}, {ipc} img/cls", fontsize=9)
        ax.set_xlabel("T: network trained on the set")
        ax.set_ylabel("C: network that condensed the set" if k == 0 else "")
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0, labelleft=k == 0)  # the rows are the same networks
    return save(fig, out)
