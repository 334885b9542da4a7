"""DC Figure 3 (test accuracy against images per class, absolute and relative to the whole-set accuracy) and DC
Table T15 (time and memory of one condensation)."""

from __future__ import annotations

import pandas as pd

from ... import paper, plan
from ...config import sections
from ..collect import Inputs, budget_of, cell, synthetic_meta
from ..section import Comparison, Section, budget_details, budget_note, number, ours_paper, ref, stat
from ..summary import compare, protocol_budget, table_cell
from .table1 import wholeset_results


def _relative(mean, whole) -> str:
    return "–" if mean is None or whole is None else f"{100 * mean / whole:.0f}%"


def ipc_sweep_section(summary: pd.DataFrame, inputs: Inputs) -> Section:
    """One row per dataset and IPC: each method's accuracy, ours / paper where DC Table 1 has the cell (the
    figure's own values are not printed in the paper), and relative to the whole-set accuracy (ours to ours,
    the paper's to its Table 1 whole-dataset column)."""
    params = inputs.params
    spec = sections(params).ipc_sweep
    methods = list(spec.methods)
    whole = wholeset_results(inputs)
    header = ["Dataset", "IPC"] + [h for m in methods for h in (m, f"{m} relative (ours / paper)")]
    rows, metrics, budgets = [], {}, {}
    for d in spec.datasets:
        ours_whole = whole.get(d, {}).get("mean")
        paper_whole = (paper.WHOLE_DATASET.get(d) or (None,))[0]
        for i in spec.ipcs:
            row = [d, str(i)]
            for m in methods:
                c, published = cell(summary, d, i, m), paper.table1(d, i, m)
                mean = None if c is None else c["mean"]
                row.append(table_cell(c, published))
                row.append(f"{_relative(mean, ours_whole)} / {_relative(published and published[0], paper_whole)}")
                if c is not None:
                    budgets[f"{m} at IPC {i}"] = budget_of(c)
                    metrics[f"{d}_ipc{i}_{m}"] = {"mean": round(mean, 2), "n_models": int(c["n_models"]),
                                                  "relative": None if ours_whole is None else round(mean / ours_whole, 4)}
            rows.append(row)
    note = ("ours / paper (the paper's where DC Table 1 has the cell: the figure's points are not printed). Relative: "
            "accuracy / whole-set accuracy, ours to our whole-set networks, the paper's to its whole-dataset column. "
            "The sweep runs at the main table's budget and shares its cells. " + budget_note(budgets)
            if budgets else "Nothing of the sweep has run.")
    return Section("ipc_sweep", "DC Figure 3: accuracy against images per class (absolute and relative)", note,
                   header, rows, metrics=metrics, details=budget_details(budgets))


def resources_section(summary: pd.DataFrame, inputs: Inputs) -> Section:
    """DC Table T15: wall time and peak memory of each set of the resources study's cells, and the test
    accuracy of the set, beside the paper's DC row of the same dataset."""
    params = inputs.params
    rows, comparisons, metrics = [], [], {}
    cells = [c for c in plan.study_cells(params) if c["study"] == "resources"]
    for c in cells:
        d, i, m = c["dataset"], c["ipc"], c["model"]
        metas = [synthetic_meta(inputs, j) for j in plan.plan(params)
                 if (j["dataset"], j["ipc"], j["method"]) == (d, i, c["method"])]
        minutes = sum(x["wall_seconds"] for x in metas) / len(metas) / 60
        peaks = [x["peak_memory"] for x in metas if "peak_memory" in x]
        memory = max(p["mb"] for p in peaks) if peaks else None
        measure = peaks[0]["measure"] if peaks else "not recorded"
        r = cell(summary, d, i, c["method"])
        published = paper.T15.get(d)
        same = published is not None and published[:2] == (m, int(i))
        accuracy = "–" if r is None else stat(r["mean"], r["std"], r["n_models"])
        rows.append([d, str(i), m, f"{number(memory, '.0f')} / {published[2] if same else '–'}",
                     f"{number(minutes, '.1f')} / {published[3] if same else '–'}",
                     ours_paper(accuracy, ref(published[4] if same else None)), measure,
                     f"K = {metas[0]['config']['iterations']}, {metas[0].get('provenance', {}).get('device', '?')}"])
        metrics[f"{d}_ipc{i}_{m}"] = {"minutes_per_set": round(minutes, 2), "peak_memory_mb": memory,
                                      "memory_measure": measure}
        if same:
            comparisons.append(compare("DC Table T15", f"{d}, IPC {i}, {m}, accuracy", d, r, published[4],
                                       protocol_budget(d, True)))
    for d, (m, i, mem, minutes, acc) in paper.T15.items():
        if not any((c["dataset"], c["model"], int(c["ipc"])) == (d, m, i) for c in cells):
            comparisons.append(Comparison("DC Table T15", f"{d}, IPC {i}, {m}", "–", f"{mem} MB, {minutes} min",
                                          "not run here: " + ("no AlexCifarNet in dcpipe's models" if
                                                              m == "AlexCifarNet" else "not in this parameter file")))
    note = ("ours / paper. Time: wall minutes per condensation (mean over sets); memory: the peak (MB) of the "
            "measure named, on the device named. The paper's are on one GTX 1080 Ti (its memory is the GPU's), so "
            "a CPU run's resident set (which includes the loaded dataset) is not the same quantity.")
    return Section("resources", "DC Table T15: time and memory of one condensation", note,
                   ["Dataset", "IPC", "Network", "Memory (MB)", "Time (min)", "Test accuracy", "Memory measure",
                    "Run"], rows, metrics=metrics, comparisons=comparisons)
