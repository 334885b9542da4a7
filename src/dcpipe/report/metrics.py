"""The report's JSON outputs. reports/metrics/ holds the DVC metrics: one small file per evaluated cell of the plan
(<dataset>_ipc<ipc>_<method>.json) and per whole-set dataset (<dataset>_whole.json), all of one schema (SCHEMA), so
that `dvc metrics show` prints one narrow row per cell and `dvc metrics diff` one line per changed value.
reports/tables/ holds each section's detail (<key>.json, the section's `metrics`) and summary.json (the status
counts and the run's provenance): plain outputs, not DVC metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paper
from ..io import write_json
from ..report_files import metric_cells, metric_name
from .collect import Inputs, cell
from .section import Section
from .sections.table1 import wholeset_results

# accuracy (%) over all models of all sets (mean, population std), the number of models, the paper's mean and std
# (null where the paper gives none)
SCHEMA = ("mean", "std", "models", "paper", "paper_std")


def cell_metrics(mean: float, std: float, models: int, published) -> dict:
    """One metrics file's values: accuracies rounded to 2 decimals, `published` the paper's (mean, std) or None."""
    ref_mean, ref_std = published or (None, None)
    return {"mean": round(float(mean), 2), "std": round(float(std), 2), "models": int(models),
            "paper": None if ref_mean is None else float(ref_mean),
            "paper_std": None if ref_std is None else float(ref_std)}


def metrics_of(params, summary: pd.DataFrame, whole: dict[str, dict]) -> dict[str, dict]:
    """{metrics file name: values} for every cell of report_files.metric_cells (what the rule declared), from `summarise`'s
    table and the whole-set results."""
    out = {}
    for dataset, ipc, method in metric_cells(params):
        if ipc is None:
            w = whole.get(dataset)
            row = w and (w["mean"], w["std"], w["models"], paper.WHOLE_DATASET.get(dataset))
        else:
            c = cell(summary, dataset, ipc, method)
            row = c and (c["mean"], c["std"], c["n_models"], paper.reference(dataset, ipc, method))
        name = metric_name(dataset, ipc, method)
        if not row:
            raise RuntimeError(f"no results for the declared metrics file {name}.json")
        out[name] = cell_metrics(*row)
    return out


def write_metrics(metrics_dir: Path, tables_dir: Path, inputs: Inputs, summary: pd.DataFrame,
                  sections: list[Section], prov: dict) -> None:
    """reports/metrics/<cell>.json (DVC metrics) and reports/tables/<key>.json + summary.json (detail) into the two
    folders, which the caller rebuilt empty."""
    for name, values in metrics_of(inputs.params, summary, wholeset_results(inputs)).items():
        write_json(metrics_dir / f"{name}.json", values)
    for s in sections:
        write_json(tables_dir / f"{s.key}.json", s.metrics)
    write_json(tables_dir / "summary.json", {**sections[0].metrics, "provenance": prov})
