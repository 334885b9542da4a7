"""The follow-up paper's ablations, each on its own budget (studies section of the parameters): Table 1 (what to
match), Table 2 (distances), Table 3 (the M / MD / MDO / MDA variants; their cost is in the cost section)."""

from __future__ import annotations

import pandas as pd

from ... import paper, plan
from ...config import sections
from ...methods import parse
from ...model_names import evaluation_model
from ..collect import budget_of, cell
from ..section import Comparison, Section, budget_details, budget_note, ref
from ..summary import compare, not_run, protocol_budget, status, table_cell, why_not_run

TITLES = {
    "levels": ("Follow-up Table 1: what to match (intra-class, inter-class, interleaved, multi-level)",
               "ours / paper; angle-only distance, fixed inner steps, λ = number of classes."),
    "distances": ("Follow-up Table 2: distance functions (multi-level matching)",
                  "ours; the paper reports SVHN at 1 img/cls only (its row is last), so it is beside ours only "
                  "where we ran SVHN."),
    "variants": ("Follow-up Table 3: DC against its M / MD / MDO / MDA variants",
                 "ours / paper. M: multi-level loss, D: angle + magnitude distance (d1 + d2), O: update the network "
                 "until the real loss rises, A: adaptive steps (eq. 12). These are separate condensations from the "
                 "main table's (V-DC is not the main table's DC): each runs at the budget named here. Cost: see the "
                 "condensation cost section."),
}
TABLE_NAMES = {"levels": "Follow-up Table 1", "distances": "Follow-up Table 2",
               "variants": "Follow-up Table 3 (variants study)"}


def published(study: str, dataset: str, ipc: int, value: str):
    if study == "levels":
        return paper.LEVELS.get(dataset, {}).get(int(ipc), {}).get(value)
    if study == "variants":
        return paper.reference(dataset, ipc, value)
    if study == "distances" and (dataset, int(ipc)) == ("SVHN", 1):
        return paper.DISTANCES_SVHN_IPC1.get(value)
    return None


def study_section(study: str, summary: pd.DataFrame, params) -> Section:
    spec = sections(params).study(study)
    mine = {(c["dataset"], c["ipc"], c["value"]): c["method"] for c in plan.study_cells(params) if c["study"] == study}
    table = TABLE_NAMES[study]
    rows, comparisons, budgets, metrics = [], [], {}, {}
    for d in spec.datasets:
        for i in spec.ipcs:
            row = [d, str(i)]
            for v in spec.values:
                if study == "variants" and not parse(v).applies_at(i):
                    row.append("n/a")
                    continue
                method = mine[(d, i, v)]
                c, theirs = cell(summary, d, i, method), published(study, d, i, v)
                judged = None if theirs is None else compare(table, f"{d}, IPC {i}, {v}", d, c, theirs,
                                                             protocol_budget(d, True, followup=True))
                row.append(table_cell(c, theirs, judged, paper=study != "distances" or theirs is not None))
                if judged is not None:
                    comparisons.append(judged)
                if c is not None:
                    budgets[f"{v} at IPC {i}" + (f" on {d}" if len(spec.datasets) > 1 else "")] = budget_of(c)
                    metrics[f"{d}_ipc{i}_{v}"] = {"mean": round(c["mean"], 2), "std": round(c["std"], 2),
                                                  "n_models": int(c["n_models"])}
            rows.append(row)
    ran = {(d, int(i)) for d in spec.datasets for i in spec.ipcs}
    if study == "levels":
        comparisons += not_run(table, paper.LEVELS, ran)
    elif study == "variants":
        comparisons += not_run(table, paper.TABLE3, ran)
    elif ("SVHN", 1) not in ran:
        rows.append(["paper: SVHN", "1"] + [ref(paper.DISTANCES_SVHN_IPC1.get(v)) for v in spec.values])
        comparisons.append(Comparison(table, f"SVHN, IPC 1 ({len(paper.DISTANCES_SVHN_IPC1)} cells)", "–",
                                      "see the paper", status(None, None, None, None, why_not_run("SVHN"))))
    title, note = TITLES[study]
    other = sections(params).variant_distance
    if study == "variants" and other:
        note += (" D's distance where the follow-up uses another (its footnote 5): "
                 + "; ".join(f"{d} at IPC {i}: {dist}" for d, by_ipc in other.items() for i, dist in by_ipc.items())
                 + ".")
    return Section(study, title, f"{note} {budget_note(budgets)}" if budgets else note,
                   ["Dataset", "IPC"] + list(spec.values), rows, metrics=metrics, comparisons=comparisons,
                   details=budget_details(budgets))


def _column(model: str) -> str:
    """A T11 column: the tested network, and the condensation network where it differs (BatchNorm variants)."""
    tested = evaluation_model(model)
    return tested if tested == model else f"{tested} (C: {model})"


def t11_section(summary: pd.DataFrame, params) -> Section:
    """DC Table T11: distance x architecture, each set learned and tested on the same network."""
    spec = sections(params).study("traditional")
    mine = {(c["dataset"], c["ipc"], c["value"], c["model"]): c["method"]
            for c in plan.study_cells(params) if c["study"] == "traditional"}
    rows, comparisons, budgets, metrics = [], [], {}, {}
    for d in spec.datasets:
        for i in spec.ipcs:
            for v in spec.values:
                row = [d, str(i), v]
                for m in spec.models:
                    c = cell(summary, d, i, mine[(d, i, v, m)])
                    tested = evaluation_model(m)  # the paper's columns name the tested network
                    theirs = paper.T11.get(v, {}).get(tested) if (d, int(i)) == ("MNIST", 1) else None
                    judged = None if theirs is None else compare(
                        "DC Table T11", f"{d}, IPC {i}, {v}, {_column(m)}", d, c, theirs, protocol_budget(d, True))
                    row.append(table_cell(c, theirs, judged))
                    if judged is not None:
                        comparisons.append(judged)
                    if c is not None:
                        budgets[f"{v} on {_column(m)}"] = budget_of(c)
                        metrics[f"{d}_ipc{i}_{v}_{m}"] = {"mean": round(c["mean"], 2), "std": round(c["std"], 2),
                                                          "n_models": int(c["n_models"])}
                rows.append(row)
    note = ("ours / paper (MNIST, 1 img/cls). mse: squared Euclidean, cos: cosine, both over the whole flattened "
            "gradient; ours: per output channel (eq. 10). A column \"VGG11 (C: VGG11BN)\" is condensed with the "
            "BatchNorm network (statistics of real data, DC appendix A) and tested on the instance-norm one. "
            + (budget_note(budgets) if budgets else ""))
    return Section("traditional", "DC Table T11: distance × architecture (learned and tested on the same network)",
                   note.strip(), ["Dataset", "IPC", "Distance"] + [_column(m) for m in spec.models], rows,
                   metrics=metrics, comparisons=comparisons, details=budget_details(budgets))
