"""The main results table (DC Table 1's DC and coreset columns, the follow-up's Table 3 for M / MD / MDO / MDA)
and the condensation cost of every synthetic method."""

from __future__ import annotations

import pandas as pd

from ... import paper, plan
from ...methods import parse
from ...config import methods as experiment_methods, sections
from ..collect import Inputs, budget_of, cell, synthetic_meta
from ..section import Budget, Section, budget_details, budget_note, number
from ..summary import compare, not_run, protocol_budget, table_cell

VARIANT_METHODS = ("M", "MD", "MDO", "MDA")
SUCCESSORS_NOTE = ("DSA's reference: the authors' readme Table 2; DM's: the DM paper's Table 1, which has MNIST and "
                   "CIFAR-10 only (elsewhere '–'); both means only. Their cells are judged at their own protocol "
                   "(DM: K = 20,000; both: 1,000 epochs with DSA augmentation). ")


def source_table(method: str) -> str:
    if method in paper.SUCCESSOR_TABLES:
        return paper.SUCCESSOR_TABLES[method][0]
    return "Follow-up Table 3" if method.removeprefix("V-") in VARIANT_METHODS else "DC Table 1"


def cell_budgets(summary: pd.DataFrame, params, methods) -> dict[str, Budget]:
    """{label: budget} of every cell, labelled by method and IPC (and dataset where datasets differ)."""
    out = {}
    for m in methods:
        e = sections(params).experiment
        for i in e.ipcs:
            by_dataset = {d: budget_of(r) for d in e.datasets
                          if (r := cell(summary, d, i, m)) is not None}
            if len(set(by_dataset.values())) == 1:
                out[f"{m} at IPC {i}"] = next(iter(by_dataset.values()))
            else:
                out.update({f"{m} at IPC {i} on {d}": b for d, b in by_dataset.items()})
    return out


def main_section(summary: pd.DataFrame, params) -> Section:
    methods = experiment_methods(params)
    e = sections(params).experiment
    rows, comparisons = [], []
    for d in e.datasets:
        for i in e.ipcs:
            row = [d, str(i)]
            for m in methods:
                if not parse(m).applies_at(i):
                    row.append("n/a")
                    continue
                c = cell(summary, d, i, m)
                published = paper.reference(d, i, m)
                judged = None if published is None else compare(
                    source_table(m), f"{d}, IPC {i}, {m}", d, c, published,
                    protocol_budget(d, parse(m).synthetic, m, followup=source_table(m) == "Follow-up Table 3"))
                row.append(table_cell(c, published, judged))
                if judged is not None:
                    comparisons.append(judged)
            rows.append(row)
    ran = {(d, int(i)) for d in e.datasets for i in e.ipcs}
    comparisons += not_run("DC Table 1", paper.TABLE1, ran)
    if set(methods) & set(VARIANT_METHODS):
        comparisons += not_run("Follow-up Table 3", paper.TABLE3, ran)
    for m in [m for m in methods if m in paper.SUCCESSOR_TABLES]:
        table, published = paper.SUCCESSOR_TABLES[m]
        comparisons += not_run(table, {d: {i: {m: v} for i, v in by_ipc.items()} for d, by_ipc in published.items()},
                               ran)
    budgets = cell_budgets(summary, params, methods)
    note = ("Each cell: ours / paper, mean ± std over all models of all sets (DC paper Table 1; M / MD / MDO / MDA: "
            "the follow-up's Table 3; n/a: O and A change nothing at 1 img/cls). "
            + (SUCCESSORS_NOTE if set(methods) & set(paper.SUCCESSOR_TABLES) else "") + budget_note(budgets))
    metrics = {f"{r.dataset}_ipc{r.ipc}_{r.method}": {"mean": round(r.mean, 2), "std": round(r.std, 2),
                                                       "n_models": int(r.n_models)}
               for r in summary.itertuples() if r.method in methods}
    return Section("main", "Results: test accuracy (%)", note, ["Dataset", "IPC"] + methods, rows,
                   metrics=metrics, comparisons=comparisons, details=budget_details(budgets))


def cost_section(inputs: Inputs) -> Section:
    """Network updates and seconds per outer iteration of every synthetic method of the main table and of the
    follow-up's variants (set 0)."""
    params = inputs.params
    methods = experiment_methods(params)
    rows, metrics = [], {}
    for job in plan.plan(params):
        if job["set"] == 0 and parse(job["method"]).synthetic and (
                job["method"] in methods or parse(job["method"]).study == "variants"):
            m = synthetic_meta(inputs, job)
            updates, seconds = m.get("net_updates_per_iteration", 0), m.get("seconds_per_iteration")
            memory = m.get("peak_memory", {}).get("mb")  # sets condensed before it was recorded have none
            rows.append([job["dataset"], str(job["ipc"]), job["method"], number(updates, ".0f"),
                         number(seconds, ".1f"), str(m["config"].get("iterations", "")), number(memory, ".0f")])
            metrics[f"{job['dataset']}_ipc{job['ipc']}_{job['method']}"] = {
                "net_updates_per_iteration": updates, "seconds_per_iteration": seconds, "peak_memory_mb": memory}
    note = ("Network updates and wall time per outer iteration of set 0 (the follow-up: 190 instead of 450 updates "
            "at 10 img/cls, 25–30% less time). Iterations: the K each set ran; the main table's DC and the "
            "follow-up Table 3's V-DC are separate condensations at their own K. Peak memory: CUDA memory torch "
            "allocated on a GPU, the process's peak resident set (with the loaded dataset) on a CPU.")
    return Section("cost", "Condensation cost", note,
                   ["Dataset", "IPC", "Method", "network updates / iteration", "seconds / iteration", "iterations (K)",
                    "peak memory (MB)"],
                   rows, metrics=metrics)
