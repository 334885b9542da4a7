"""Protocol runs: a parameter file of config/ run end to end in its own checkout, recorded under
reports/records/protocol/<name>.json so that the main report (whose own cells run at the CPU budget) can show
them, judged against the paper's mean ± 2 std like any other cell.

A record keeps every trained network's accuracy of every cell, with the set's condensation cost, the command,
the wall time, the commit and each stated departure from the paper; the report computes the statistics and the
status from it with the same functions as its own cells."""

from __future__ import annotations

import statistics
from pathlib import Path

from .. import artifacts, plan
from ..io import read_json


def _set_record(r: dict) -> dict:
    meta = r["train_set_meta"]
    out = {"set": r["set"], "accuracies": [100 * a for a in r["accuracies"]], "epochs": r["train_config"]["epochs"],
           "evaluate_wall_seconds": r["wall_seconds"], "commit": r.get("provenance", {}).get("git_commit"),
           "git_dirty": r.get("provenance", {}).get("git_dirty")}
    if meta.get("kind") == "synthetic":
        out.update(iterations=meta["config"]["iterations"], condense_wall_seconds=meta["wall_seconds"],
                   condense_seconds_per_iteration=meta["seconds_per_iteration"])
    return out


def protocol_record(params, checkout: Path, *, name: str, params_file: str, command: str, wall_clock: str,
                    machine: str, departures: dict[str, str]) -> dict:
    """The record of one finished protocol run: every cell of params' plan, read from checkout's data/eval/."""
    cells: dict[tuple, list] = {}
    for job in plan.plan(params):
        path = checkout / artifacts.EVAL.format(**job)
        if not path.exists():
            raise FileNotFoundError(f"{path}: the run of {params_file} has not finished this evaluation; record it "
                                    "once snakemake has built every job")
        cells.setdefault((job["dataset"], job["ipc"], job["method"]), []).append(_set_record(read_json(path)))
    commits = sorted({s["commit"] or "unknown" for sets in cells.values() for s in sets})
    return {"name": name, "params_file": params_file, "command": command, "wall_clock": wall_clock,
            "machine": machine, "commits": commits,
            "uncommitted_changes": any(s["git_dirty"] for sets in cells.values() for s in sets),
            "departures_from_paper": departures,
            "cells": [{"dataset": d, "ipc": i, "method": m, "sets": sorted(sets, key=lambda s: s["set"])}
                      for (d, i, m), sets in cells.items()]}


def cell_stats(cell: dict) -> dict:
    """Mean and population std (the papers') over every network of every set of a recorded cell, and its budget
    as Budget's fields (models, epochs, K: None where they differ between sets or do not apply)."""
    accs = [a for s in cell["sets"] for a in s["accuracies"]]
    mean, std = statistics.fmean(accs), statistics.pstdev(accs)

    def same(values):
        values = set(values)
        return values.pop() if len(values) == 1 else None

    return {"mean": mean, "std": std, "n_models": len(accs), "sets": len(cell["sets"]),
            "models": same(len(s["accuracies"]) for s in cell["sets"]), "epochs": same(s["epochs"] for s in cell["sets"]),
            "iterations": same(s.get("iterations") for s in cell["sets"])}
