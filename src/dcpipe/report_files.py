"""The report rule's files, known from the parameters alone: what it reads (its `input:`, all that report.collect may
open) and what it writes (its `output:`). Imported by the Snakefile's report rule and by the report itself."""

from __future__ import annotations

import glob
from pathlib import Path

from . import artifacts
from .config import sections
from .methods import parse
from .plan import (continual_results, cross_plan, nas_outputs, optimal_random_jobs, plan, score_jobs, score_outputs,
                   set_jobs, wholeset_jobs)

# Measurements made by hand (their commands inside), committed; the speed sections show them.
RECORDS = {name: f"reports/records/{name}.json" for name in ("bench", "run", "headline")}
# Records that exist only once someone ran them on hardware this project is not always lent: `make gpu-check`'s
# JSON from a real GPU. Declared as inputs only when committed, so a checkout without one still plans and builds.
# The speed switches' equal-work bench and training-precision check likewise (`dcpipe bench --baseline`,
# `dcpipe check-precision --pass train`): minutes each, run by hand, shown when committed.
OPTIONAL_RECORDS = {"gpu": "reports/records/gpu.json", "bench_baseline": "reports/records/bench_baseline.json",
                    "precision_train": "reports/records/precision_check_train.json"}
# Protocol runs (dcpipe.report.protocol): one record per config/ file run end to end in its own checkout.
PROTOCOL_RECORDS = "reports/records/protocol/*.json"
OUT_DIR = "reports"
# Tidy long-format CSVs for `dvc plots` (one row per observation, named columns).
PLOTS = ("matching_loss", "accuracy_vs_ipc", "model_accuracies")


def report_inputs(params) -> dict[str, list[str]]:
    """Every file the report may open, by kind: the rule declares exactly these (`input: **report_inputs(P)`),
    and collect.Inputs refuses to open anything else."""
    jobs, cross, e = plan(params), cross_plan(params), sections(params).experiment
    synthetic = [j for j in jobs if parse(j["method"]).synthetic]
    cross_sets = sorted({artifacts.SYNTHETIC.format(**j) for j in cross})
    return {
        "evals": [artifacts.EVAL.format(**j) for j in jobs],
        # the images of the grids: set 0 of DC per dataset and IPC of the main table
        "synthetic": [artifacts.SYNTHETIC.format(dataset=d, ipc=i, method="DC", set=0) for d in e.datasets
                      for i in e.ipcs if "DC" in e.methods],
        "synthetic_meta": [artifacts.SYNTHETIC.format(**j) + ".json" for j in synthetic],
        "losses": [artifacts.LOSS.format(**j) for j in synthetic],
        "prepared_meta": sorted({artifacts.PREPARED.format(**j) + ".json" for j in jobs}),
        "continual": continual_results(params),
        "nas": nas_outputs(params),
        "cross": [artifacts.EVAL_ON.format(**j) for j in cross],
        "cross_sets_meta": [s + ".json" for s in cross_sets],
        "wholeset": [artifacts.WHOLESET_RESULT.format(**j) for j in wholeset_jobs(params)],
        "optimal_random": [artifacts.OPTIMAL_RANDOM.format(**j) for j in optimal_random_jobs(params)],
        "score": score_outputs(params),
        "records": list(RECORDS.values()),
        "optional_records": [p for p in OPTIONAL_RECORDS.values() if Path(p).exists()],
        "protocol_records": sorted(glob.glob(PROTOCOL_RECORDS)),
        "cell_pages": cell_page_inputs(params),
    }


def cell_page_inputs(params) -> list[str]:
    """What the page of each set (reports/cells/) shows: the set, its metadata and loss (synthetic), and the
    prepared data its coreset indexes."""
    sets = {(j["dataset"], int(j["ipc"]), j["method"], j["set"]) for j in set_jobs(params)}
    files = set()
    for d, i, m, k in sets:
        job = dict(dataset=d, ipc=i, method=m, set=k)
        files.add(artifacts.train_set(d, i, m, k))
        files.add(artifacts.PREPARED.format(dataset=d) + ".json")
        if parse(m).synthetic:
            files.update({artifacts.SYNTHETIC.format(**job) + ".json", artifacts.LOSS.format(**job)})
        else:
            files.add(artifacts.PREPARED.format(dataset=d))
    return sorted(files)


def metric_name(dataset: str, ipc: int | None = None, method: str | None = None) -> str:
    """The name of one DVC metrics file (reports/metrics/<name>.json): <dataset>_ipc<ipc>_<method> for an evaluated
    cell, <dataset>_whole for a whole-set dataset."""
    return f"{dataset}_whole" if ipc is None else f"{dataset}_ipc{ipc}_{method}"


def metric_cells(params) -> list[tuple]:
    """(dataset, ipc, method) of every cell the plan evaluates, in plan order, then (dataset, None, None) of every
    whole-set dataset: one DVC metrics file each, all of one schema (dcpipe.report.metrics)."""
    cells = dict.fromkeys((j["dataset"], j["ipc"], j["method"]) for j in plan(params))
    return list(cells) + list(dict.fromkeys((j["dataset"], None, None) for j in wholeset_jobs(params)))


def section_keys(params) -> list[str]:
    """The report's sections in page order (each writes its detail to reports/tables/<key>.json), known from the
    parameters alone so that the rule can declare every output before it runs."""
    s = sections(params)
    main, studies = s.experiment.methods, {spec.name: spec for spec in s.studies}
    keys = ["summary", "main"]
    if any(parse(m).synthetic for m in main) or "variants" in studies:
        keys.append("cost")
    if wholeset_jobs(params) or any(parse(m).evidence for m in main):
        keys.append("table1")
    if optimal_random_jobs(params):
        keys.append("t12")
    if s.ipc_sweep:
        keys.append("ipc_sweep")
    keys += [s for s in ("levels", "distances", "variants", "traditional", "resources") if s in studies]
    if s.continual:
        keys.append("continual")
    if s.nas:
        keys.append("nas")
    if score_jobs(params):
        keys.append("score")
    keys += [f"cross_{spec.name}_{d}_ipc{i}" for spec in s.studies if spec.cross for d in spec.datasets
             for i in spec.ipcs]
    keys.append("protocol_runs")
    keys += [f"speed_{name}" for name in (*RECORDS, *OPTIONAL_RECORDS)]
    if "DC" in main:
        keys += ["synthetic_images", "matching_loss"]
    keys.append("seeds")
    return keys


def report_outputs(params, out_dir: str = OUT_DIR) -> dict:
    """Every file the report writes (the rule's `output:`; reports/figures is a directory, rebuilt whole)."""
    return {
        "md": f"{out_dir}/index.md",
        "html": f"{out_dir}/index.html",
        "table": f"{out_dir}/table1.csv",
        "cross": f"{out_dir}/cross.csv",
        # DVC metrics: one small file per evaluated cell, one schema (`dvc metrics show` stays narrow)
        "metrics": [f"{out_dir}/metrics/{metric_name(*c)}.json" for c in metric_cells(params)],
        # each section's detail (and summary.json: the status counts and provenance), plain outputs
        "tables": [f"{out_dir}/tables/{k}.json" for k in section_keys(params)],
        "plots": [f"{out_dir}/plots/{p}.csv" for p in PLOTS],
        "figures": f"{out_dir}/figures",
        "cells": f"{out_dir}/cells",  # a page per set (report.cells), with its images
    }
