"""DC Table 1 as the paper lays it out (Random, Herding, K-Center, Forgetting, DC, whole dataset) and Table T12
(optimal random selection)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import artifacts, paper, plan
from ...methods import parse
from ...config import methods as experiment_methods, sections
from ..collect import Inputs, cell
from ..section import Budget, Cell, Comparison, Section, budget_details, budget_note, ours_paper, plural, ref, stat
from ..summary import compare, not_run, protocol_budget, status, table_cell, why_not_run
from .main import cell_budgets

TABLE1_COLUMNS = (("random", "Random"), ("herding", "Herding"), ("kcenter", "K-Center"), ("forgetting", "Forgetting"),
                  ("DC", "DC"))


def wholeset_results(inputs: Inputs) -> dict[str, dict]:
    """{dataset: {mean, std (%), models, epochs}} over the whole-set networks of each dataset (Table 1's
    whole-dataset column; the paper's population std, as every table here)."""
    accs, epochs = {}, {}
    for job in plan.wholeset_jobs(inputs.params):
        r = inputs.json(artifacts.WHOLESET_RESULT.format(**job))
        accs.setdefault(job["dataset"], []).append(100 * r["accuracy"])
        epochs[job["dataset"]] = r["train_config"]["epochs"]
    return {d: {"mean": float(np.mean(a)), "std": float(np.std(a)), "models": len(a), "epochs": epochs[d]}
            for d, a in accs.items()}


def evidence_note(params) -> str:
    """Which whole-set network each coreset set selects from: its own (the paper runs each baseline 5 times), or
    network 0 for every set where the file trains one (then herding's and k-center's sets are identical)."""
    n, sets = plan.whole_models(params), sections(params).experiment.sets
    if sets == 1:
        return "The one coreset per cell selects from whole-set network 0. "
    if n == 1:
        return (f"All {sets} sets of a coreset method select from whole-set network 0 (coresets.whole_models = 1; "
                "paper: each of its 5 runs has its own), so herding's and k-center's sets are identical and "
                "their ± leaves selection variance out. ")
    return f"Coreset set k selects from whole-set network k (its own features and forgetting trace). "


def whole_budget(w: dict) -> Budget:
    return Budget(iterations=None, sets=1, models=w["models"], epochs=w["epochs"], unit="whole training set")


def whole_protocol(dataset: str) -> Budget:
    return Budget(iterations=None, sets=1, models=paper.WHOLE_DATASET_PROTOCOL["models"],
                  epochs=paper.protocol_epochs(dataset), unit="whole training set")


def whole_comparison(dataset: str, w: dict) -> Comparison:
    published = paper.WHOLE_DATASET.get(dataset)
    return Comparison("DC Table 1", f"{dataset}, whole dataset", stat(w["mean"], w["std"], w["models"]),
                      ref(published), status(w["mean"], published, whole_budget(w), whole_protocol(dataset)),
                      ours_value=(w["mean"], w["std"]), paper_value=published)


def table1_section(summary: pd.DataFrame, inputs: Inputs) -> Section:
    params = inputs.params
    planned = set(experiment_methods(params))
    cols = [(m, name) for m, name in TABLE1_COLUMNS if m in planned]
    whole = wholeset_results(inputs)
    header = ["Dataset", "IPC"] + [name for _, name in cols] + (["Whole dataset"] if whole else [])
    rows, comparisons = [], []
    e = sections(params).experiment
    for d in e.datasets:
        for i in e.ipcs:
            row = [d, str(i)]
            for m, _ in cols:
                c, published = cell(summary, d, i, m), paper.table1(d, i, m)
                judged = compare("DC Table 1", f"{d}, IPC {i}, {m}", d, c, published,
                                 protocol_budget(d, parse(m).synthetic))
                row.append(table_cell(c, published, judged))
                comparisons.append(judged)
            if whole:
                w = whole.get(d)
                judged = whole_comparison(d, w) if w else None
                row.append(Cell(ours_paper(judged.ours if w else "–", ref(paper.WHOLE_DATASET.get(d))),
                                judged.kind if w else "", whole_budget(w).text() if w else ""))
            rows.append(row)
    comparisons += [whole_comparison(d, w) for d, w in whole.items()]
    ran = {(d, int(i)) for d in e.datasets for i in e.ipcs}
    comparisons += not_run("DC Table 1", paper.TABLE1, ran)
    budgets = cell_budgets(summary, params, [m for m, _ in cols])
    budgets.update({f"whole dataset on {d}": whole_budget(w) for d, w in whole.items()})
    note = ("ours / paper. Herding and k-center pick in the penultimate-feature space (l2) of a network trained on "
            "the whole training set, forgetting the most forgotten samples of that training (never-learnt first); "
            "herding and k-center are deterministic given the features. " + evidence_note(params)
            + "Whole dataset: networks trained on all training images (the paper states no budget). "
            + budget_note(budgets))
    metrics = {f"{r.dataset}_ipc{r.ipc}_{r.method}": {"mean": round(r.mean, 2), "std": round(r.std, 2),
                                                       "n_models": int(r.n_models)}
               for r in summary.itertuples() if r.method in dict(cols)}
    metrics.update({f"{d}_whole_dataset": {"mean": round(w["mean"], 2), "std": round(w["std"], 2),
                                           "n_models": w["models"]} for d, w in whole.items()})
    return Section("table1", "DC Table 1: coreset baselines, DC and the whole dataset", note, header, rows,
                   details=budget_details(budgets),
                   metrics=metrics, comparisons=comparisons)


def t12_section(inputs: Inputs) -> Section:
    """DC Table T12: mean ± std of the best 100%, 10% and 1% of N random coresets (paper: N = 1000)."""
    header = ["Dataset", "IPC", "Top N (all)", "Top 10%", "Top 1%", "Budget"]
    rows, comparisons, metrics = [], [], {}
    protocol_n = paper.T12_PROTOCOL["coresets"]
    for job in plan.optimal_random_jobs(inputs.params):
        d, i = job["dataset"], int(job["ipc"])
        r = inputs.json(artifacts.OPTIMAL_RANDOM.format(**job))
        published = paper.T12.get(d, {}).get(i, {})
        epochs = r["train_config"]["epochs"]
        models = r.get("models_per_coreset", 1)
        budget = Budget(None, sets=r["coresets"], models=models, epochs=epochs, unit="coreset")
        protocol = Budget(None, sets=protocol_n, models=paper.T12_PROTOCOL["models_per_coreset"],
                          epochs=paper.protocol_epochs(d), unit="coreset")
        cells = []
        for t in r["top"]:
            ours = stat(100 * t["mean"], 100 * t["std"], t["n"], unit="coreset")
            ours += "" if t["n"] == 1 else f" (top {t['n']})"
            label = f"{d}, IPC {i}, top {t['fraction']:.0%}"
            theirs = published.get(t["fraction"])
            judged = Comparison("DC Table T12", label, ours, ref(theirs),
                                status(100 * t["mean"], theirs, budget, protocol, why_not_run(d)),
                                ours_value=(100 * t["mean"], 100 * t["std"]), paper_value=theirs)
            cells.append(Cell(ours_paper(ours, ref(theirs)), judged.kind, budget.text()))
            comparisons.append(judged)
            metrics[f"{d}_ipc{i}_top{t['fraction']:g}"] = {"mean": round(100 * t["mean"], 2),
                                                          "std": round(100 * t["std"], 2), "n": t["n"]}
        rows.append([d, str(i)] + cells + [budget.text()])
    note = ("ours (how many of the best coresets) / paper. N random coresets, ranked by the test accuracy they train to, as "
            "the paper ranks them: an oracle's pick (selected on the test set), an upper bound on random selection "
            f"rather than a usable method. Paper: N = {protocol_n}, 1 {plural('model', 1)} per coreset.")
    return Section("t12", "DC Table T12: optimal random selection", note, header, rows, metrics=metrics,
                   comparisons=comparisons)
