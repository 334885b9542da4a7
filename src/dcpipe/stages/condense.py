"""Stage condense: one synthetic set of a method (DC and its variants, DSA, DM, a plug-in's, or a finished file's),
through the door (dcpipe.door): called inside the set's seed, checked, then written. Resumes from its checkpoint
if killed."""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import numpy as np

# the built-in condensation is resolved by name through the door: imported here, its code (matching, DM) is this
# stage's code dependency (dcpipe.codedeps reads imports)
from .. import builtins, door  # noqa: F401
from ..io import atomic_path, provenance, remove_stale_temps, write_json, write_npz
from ..jobs import CondenseJob
from ..plugin import Checkpoint
from ..runtime import peak_memory, reset_peak_memory
from .common import device, load_data

log = logging.getLogger("dcpipe")


def condense(job: CondenseJob, prepared: Path, out: Path, loss_csv: Path) -> None:
    s, e = job.set, job.method
    dev = device(s.env)
    d = load_data(s.env, prepared, dev)
    ckpt = Path(str(out) + ".ckpt.safetensors")
    for p in (ckpt, out, Path(str(out) + ".json"), loss_csv):  # a SIGKILL mid-write leaves its temporary behind
        for stale in remove_stale_temps(p):
            log.info("removed %s, left by a killed run", stale)
    progress = door.StepProgress(f"condense {s.name}", s.env.log_every)
    reset_peak_memory(dev)
    t0 = time.perf_counter()
    if e.kind == "file":
        made = door.read_file(e, d, s.ipc, s.index)
    else:
        checkpoint = Checkpoint(ckpt, {"method": s.method, "seed": s.seed, "settings": job.settings})
        made = door.synthesise(e, d, s.ipc, s.seed, dev, job.settings, progress, checkpoint)
    progress.close()
    wall = time.perf_counter() - t0
    losses, net_updates = made.curves.get("matching_loss", []), made.curves.get("net_updates", [])
    with atomic_path(loss_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "matching_loss", "net_updates"])
        w.writerows(zip(range(len(losses)), losses, net_updates or [""] * len(losses)))
    arrays = {"images": made.images.cpu().numpy().astype(np.float32), "labels": made.labels.cpu().numpy()}
    if made.soft is not None:
        arrays["soft_labels"] = made.soft.cpu().numpy().astype(np.float32)
    write_npz(out, **arrays)
    write_json(str(out) + ".json", {"kind": "synthetic", "method": s.method, "dataset": s.dataset,
                                    "ipc": s.ipc, "set": s.index, "seed": s.seed, "config": job.settings,
                                    "plugin": None if e.builtin else door.plugin_record(e, s.dataset, s.ipc, s.index),
                                    "labels": "hard" if made.soft is None else "soft",
                                    "wall_seconds": wall,
                                    "seconds_per_iteration": wall / max(1, len(progress.ran)),
                                    "net_updates_per_iteration": float(np.mean(net_updates)) if net_updates else 0.0,
                                    "final_loss": losses[-1] if losses else None,
                                    "peak_memory": peak_memory(dev),  # DC Table T15's memory column
                                    "provenance": provenance()})
    ckpt.unlink(missing_ok=True)
