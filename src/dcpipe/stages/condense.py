"""Stage condense: one synthetic set of a method (DC and its variants, DSA, DM, a plug-in's, or a finished file's),
through the door (dcpipe.door): called inside the set's seed, checked, then written. Resumes from its checkpoint
if killed."""

from __future__ import annotations

import csv
import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from .. import door
from ..io import atomic_path, file_md5, provenance, remove_stale_temps, write_json, write_npz
from ..jobs import CondenseJob
from ..plugin import Checkpoint
from ..runtime import Progress, peak_memory, reset_peak_memory
from .common import device, load_data

log = logging.getLogger("dcpipe")


class StepProgress:
    """The plug-in's progress callback (step, total, value) on the stage's progress bar, made at its first call
    (only the method knows its total). It records which steps this process ran: a resumed run's time covers
    only those."""

    def __init__(self, name: str, log_every: int):
        self.name, self.every, self.bar, self.ran = name, log_every, None, []

    def __call__(self, step: int, total: int, value: float | None = None) -> None:
        if self.bar is None:
            self.bar = Progress(total, self.name, self.every)
        self.ran.append(step)
        self.bar(step, value)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def condense(job: CondenseJob, prepared: Path, out: Path, loss_csv: Path) -> None:
    s, e = job.set, job.method
    dev = device(s.env)
    d = load_data(s.env, prepared, dev)
    ckpt = Path(str(out) + ".ckpt.safetensors")
    for p in (ckpt, out, Path(str(out) + ".json"), loss_csv):  # a SIGKILL mid-write leaves its temporary behind
        for stale in remove_stale_temps(p):
            log.info("removed %s, left by a killed run", stale)
    progress = StepProgress(f"condense {s.name}", s.env.log_every)
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
                                    "plugin": None if e.builtin else plugin_record(e, s.dataset, s.ipc, s.index),
                                    "labels": "hard" if made.soft is None else "soft",
                                    "wall_seconds": wall,
                                    "seconds_per_iteration": wall / max(1, len(progress.ran)),
                                    "net_updates_per_iteration": float(np.mean(net_updates)) if net_updates else 0.0,
                                    "final_loss": losses[-1] if losses else None,
                                    "peak_memory": peak_memory(dev),  # DC Table T15's memory column
                                    "provenance": provenance()})
    ckpt.unlink(missing_ok=True)


def plugin_record(e, dataset: str, ipc: int, index: int) -> dict:
    """What made a plug-in's set: its entry, and the md5 of the code (or the file) it came from."""
    source = e.file_for(dataset, ipc, index) if e.kind == "file" else e.source()
    return {"name": e.name, "kind": e.kind, "target": e.target, "origin": e.origin, "settings": e.settings,
            "source": source, "source_md5": source_md5(Path(source)) if source else None}


def source_md5(path: Path) -> str:
    """A file's md5, or a folder's (MTT's two tensors): the md5 of its files' names and md5s, in name order."""
    if path.is_file():
        return file_md5(path)
    return hashlib.md5("".join(f"{p.name}:{file_md5(p)}\n" for p in sorted(path.iterdir()) if p.is_file())
                       .encode()).hexdigest()
