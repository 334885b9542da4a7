"""Stage select_coreset: a coreset (indices of real training images) for one dataset, IPC, method and set."""

from __future__ import annotations

from pathlib import Path

import torch

from ..coreset import EVIDENCE, SELECTORS
from ..errors import ArtifactError, ParamsError
from ..io import provenance, read_npz, write_json, write_npz
from .common import load_data, seed_of_set


def select_coreset(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, out: Path,
                   evidence: Path | None = None) -> None:
    """Herding and k-center read the whole-set model's features, forgetting its counts (`evidence`); herding
    and k-center are deterministic given the features (the seed is recorded but unused)."""
    d = load_data(params, prepared, "cpu")
    seed = seed_of_set(params, dataset, ipc, method, index)
    kwargs = {}
    if method in EVIDENCE:
        if evidence is None:
            raise ParamsError(f"{method} selects from the whole-set stage's {EVIDENCE[method]}: pass --evidence")
        values = torch.as_tensor(read_npz(evidence, (EVIDENCE[method],))[EVIDENCE[method]])
        if len(values) != len(d.y_train):
            raise ArtifactError(f"{evidence}: {len(values)} samples, the training set has {len(d.y_train)}; "
                                "rerun the wholeset stage")
        kwargs[EVIDENCE[method]] = values
    idx = SELECTORS[method](d.y_train, ipc, d.num_classes, seed, **kwargs)
    write_npz(out, indices=idx.numpy(), labels=d.y_train[idx].numpy())
    write_json(str(out) + ".json", {"kind": "coreset", "method": method, "dataset": dataset, "ipc": ipc,
                                    "set": index, "seed": seed, "evidence": str(evidence) if evidence else None,
                                    "deterministic_given_evidence": method in ("herding", "kcenter"),
                                    "provenance": provenance()})
