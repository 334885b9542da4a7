"""The report's reading side: it opens only the rule's declared inputs (report_files.report_inputs), through one Inputs
object that refuses anything else, so what the report shows can never depend on a file Snakemake or DVC does
not know about (a stale leftover, a file of another run)."""

from __future__ import annotations

import os

import pandas as pd

from .. import artifacts, plan
from ..methods import parse
from ..io import read_json, read_npz
from ..report_files import OPTIONAL_RECORDS, RECORDS, report_inputs
from .section import Budget


class UndeclaredInput(RuntimeError):
    pass


class Inputs:
    """The declared input files of one report build, and the only way the report opens a file."""

    def __init__(self, params, files: dict[str, list[str]] | None = None):
        self.params = params
        self.files = report_inputs(params) if files is None else files
        self.declared = {os.path.normpath(f) for fs in self.files.values() for f in fs}
        self.opened: list[str] = []

    def _declared(self, path) -> str:
        p = os.path.normpath(str(path))
        if p not in self.declared:
            raise UndeclaredInput(f"the report tried to open {p}, which is not among the report rule's inputs "
                                  "(dcpipe.report_files.report_inputs)")
        self.opened.append(p)
        return p

    def json(self, path):
        return read_json(self._declared(path))

    def path(self, path) -> str:
        """A declared input's path, for a reader of its bytes (the md5 of a cell page's artifacts)."""
        return self._declared(path)

    def npz(self, path):
        return read_npz(self._declared(path))

    def csv(self, path) -> pd.DataFrame:
        return pd.read_csv(self._declared(path))

    def record(self, name: str) -> dict:
        return self.json(RECORDS[name])

    def optional_record(self, name: str) -> dict | None:
        """An OPTIONAL_RECORDS file when the rule declared it (it exists), else None."""
        path = os.path.normpath(OPTIONAL_RECORDS[name])
        return self.json(path) if path in self.declared else None


EVAL_COLUMNS = ["dataset", "ipc", "method", "set", "model", "accuracy", "seed", "eval_seed", "epochs", "iterations",
                "wall_seconds", "labels", "hard_accuracy"]


def evaluations(inputs: Inputs) -> pd.DataFrame:
    """One row per trained network of the plan: accuracy (%) and what its set cost (K: None for coresets)."""
    rows = []
    for job in plan.plan(inputs.params):
        r = inputs.json(artifacts.EVAL.format(**job))
        meta = r["train_set_meta"]
        # K of a condensation (a plug-in's settings may have none, a coreset has none)
        k = meta["config"].get("iterations") if meta.get("kind") == "synthetic" else None
        # a soft-label set: its networks trained on the soft labels (the score) and on their argmax (beside it)
        hard = r["hard_label"]["accuracies"] if r.get("labels") == "soft" else [None] * len(r["accuracies"])
        for i, (acc, hard_acc) in enumerate(zip(r["accuracies"], hard)):
            rows.append({**job, "model": i, "accuracy": 100 * acc, "seed": meta["seed"], "eval_seed": r["seed"],
                         "epochs": r["train_config"]["epochs"], "iterations": k,
                         "wall_seconds": r["wall_seconds"] / len(r["accuracies"]), "labels": r.get("labels", "hard"),
                         "hard_accuracy": None if hard_acc is None else 100 * hard_acc})
    return pd.DataFrame(rows, columns=EVAL_COLUMNS)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and population std (the papers') over all models of all sets per (dataset, ipc, method), with the
    budget behind them."""
    keys = ["dataset", "ipc", "method"]
    if df.empty:
        return pd.DataFrame(columns=keys + ["mean", "std", "n_models", "sets", "models_per_set", "epochs",
                                            "iterations", "labels", "hard_mean", "hard_std"])
    g = df.groupby(keys, sort=False)
    out = g["accuracy"].agg(mean="mean", n_models="count").reset_index()
    out["std"] = g["accuracy"].std(ddof=0).values
    out["sets"] = g["set"].nunique().values
    out["models_per_set"] = df.groupby(keys + ["set"], sort=False)["model"].count().groupby(level=keys,
                                                                                           sort=False).max().values
    out["epochs"] = g["epochs"].first().values
    out["iterations"] = g["iterations"].first().values
    out["labels"] = g["labels"].first().values
    out["hard_mean"] = g["hard_accuracy"].mean().values  # NaN for hard-label sets
    out["hard_std"] = g["hard_accuracy"].std(ddof=0).values
    return out


def cell(summary: pd.DataFrame, dataset, ipc, method) -> dict | None:
    """One (dataset, ipc, method) row of `summarise` as a dict, or None where it did not run."""
    r = summary[(summary.dataset == dataset) & (summary.ipc == int(ipc)) & (summary.method == method)]
    return None if r.empty else r.iloc[0].to_dict()


def budget_of(row: dict) -> Budget:
    k = row.get("iterations")
    return Budget(iterations=None if k is None or pd.isna(k) else int(k), sets=int(row["sets"]),
                  models=int(row["models_per_set"]), epochs=int(row["epochs"]))


CROSS_EVAL_COLUMNS = ["study", "dataset", "ipc", "condense_model", "eval_model", "set", "model", "accuracy",
                      "epochs", "iterations", "wall_seconds"]


def cross_evaluations(inputs: Inputs) -> pd.DataFrame:
    """One row per trained network of the cross studies (DC Table 2, T6-T10)."""
    rows = []
    for job in plan.cross_plan(inputs.params):
        r = inputs.json(artifacts.EVAL_ON.format(**job))
        for i, acc in enumerate(r["accuracies"]):
            rows.append({"study": job["study"], "dataset": job["dataset"], "ipc": job["ipc"],
                         "condense_model": job["condense_model"], "eval_model": job["model"], "set": job["set"],
                         "model": i, "accuracy": 100 * acc, "epochs": r["train_config"]["epochs"],
                         "iterations": r["train_set_meta"]["config"]["iterations"],
                         "wall_seconds": r["wall_seconds"] / len(r["accuracies"])})
    return pd.DataFrame(rows, columns=CROSS_EVAL_COLUMNS)


def synthetic_meta(inputs: Inputs, job: dict) -> dict:
    return inputs.json(artifacts.SYNTHETIC.format(**job) + ".json")


def matching_losses(inputs: Inputs) -> pd.DataFrame:
    """Long format: one row per (dataset, ipc, method, set, iteration) of every condensation of the plan."""
    frames = []
    for job in plan.plan(inputs.params):
        if parse(job["method"]).synthetic:
            f = inputs.csv(artifacts.LOSS.format(**job))
            frames.append(pd.DataFrame({"dataset": job["dataset"], "ipc": job["ipc"], "method": job["method"],
                                        "set": job["set"], "iteration": f["iteration"], "loss": f["matching_loss"]}))
    cols = ["dataset", "ipc", "method", "set", "iteration", "loss"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
