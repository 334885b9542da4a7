"""Stage select_coreset: a coreset (indices of real training images) for one dataset, IPC, method and set."""

from __future__ import annotations

from pathlib import Path

import torch

from ..coreset import SELECTORS
from ..coreset_names import EVIDENCE
from ..errors import ArtifactError, ParamsError
from ..io import provenance, read_npz, write_json, write_npz
from ..jobs import SetJob
from .common import load_data


def select_coreset(job: SetJob, prepared: Path, out: Path, evidence: Path | None = None) -> None:
    """Herding and k-center read the whole-set model's features, forgetting its counts (`evidence`); herding
    and k-center are deterministic given the features (the seed is recorded but unused)."""
    method, ipc, seed = job.method, job.ipc, job.seed
    d = load_data(job.env, prepared, "cpu")
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
    write_json(str(out) + ".json", {"kind": "coreset", "method": method, "dataset": job.dataset, "ipc": ipc,
                                    "set": job.index, "seed": seed, "evidence": str(evidence) if evidence else None,
                                    "deterministic_given_evidence": method in ("herding", "kcenter"),
                                    "provenance": provenance()})
