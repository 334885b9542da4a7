"""Stage select_coreset: a coreset (indices of real training images) for one dataset, IPC, method and set, from a
built-in selector or a plug-in, through the door (dcpipe.door)."""

from __future__ import annotations

from pathlib import Path

# the built-in coresets are resolved by name through the door: imported here, their code is this stage's code
# dependency (dcpipe.codedeps reads imports)
from .. import builtin_coresets, door  # noqa: F401
from ..jobs import CondenseJob
from ..io import provenance, write_json, write_npz
from ..plugin import Checkpoint
from .common import load_data


def select_coreset(job: CondenseJob, prepared: Path, out: Path) -> None:
    """Herding and k-center read the whole-set model's features, forgetting its counts (the job's evidence file);
    herding and k-center are deterministic given the features (the seed is recorded but unused)."""
    s, e = job.set, job.method
    d = load_data(s.env, prepared, "cpu")
    progress = door.StepProgress(f"select {s.name}", s.env.log_every)
    checkpoint = Checkpoint(str(out) + ".ckpt.safetensors", {"method": s.method, "seed": s.seed,
                                                            "settings": job.settings})
    idx = door.select(e, d, s.ipc, s.seed, "cpu", job.settings, progress, checkpoint)
    progress.close()
    write_npz(out, indices=idx.numpy(), labels=d.y_train[idx].numpy())
    evidence = job.settings.get("evidence") if e.builtin else None
    write_json(str(out) + ".json", {"kind": "coreset", "method": s.method, "dataset": s.dataset, "ipc": s.ipc,
                                    "set": s.index, "seed": s.seed, "evidence": str(evidence) if evidence else None,
                                    "deterministic_given_evidence": s.method in ("herding", "kcenter"),
                                    "plugin": None if e.builtin else door.plugin_record(e, s.dataset, s.ipc, s.index),
                                    "provenance": provenance()})
    checkpoint.clear()
