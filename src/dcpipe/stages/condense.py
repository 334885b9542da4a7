"""Stage condense: one synthetic set by gradient or distribution matching (resumes from its checkpoint if killed)."""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import numpy as np

from ..dm import synthesise
from ..jobs import CondenseJob
from ..io import atomic_path, provenance, remove_stale_temps, write_json, write_npz
from ..runtime import Progress, peak_memory, reset_peak_memory
from .common import device, load_data

log = logging.getLogger("dcpipe")


def condense(job: CondenseJob, prepared: Path, out: Path, loss_csv: Path) -> None:
    s, cfg = job.set, job.cfg
    dev = device(s.env)
    d = load_data(s.env, prepared, dev)
    seed = s.seed
    ckpt = Path(str(out) + ".ckpt.safetensors")
    for p in (ckpt, out, Path(str(out) + ".json"), loss_csv):  # a SIGKILL mid-write leaves its temporary behind
        for stale in remove_stale_temps(p):
            log.info("removed %s, left by a killed run", stale)
    bar = Progress(cfg.iterations, f"condense {s.name}", s.env.log_every)
    ran = []  # iterations this process ran: a resumed run's wall time covers only those

    def progress(it, loss):
        ran.append(it)
        bar(it, loss)

    reset_peak_memory(dev)
    t0 = time.perf_counter()
    images, labels, losses, net_updates = synthesise(d, cfg, seed, checkpoint=ckpt, progress=progress)
    bar.close()
    wall = time.perf_counter() - t0
    with atomic_path(loss_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "matching_loss", "net_updates"])
        w.writerows(zip(range(len(losses)), losses, net_updates))
    write_npz(out, images=images.cpu().numpy().astype(np.float32), labels=labels.cpu().numpy())
    write_json(str(out) + ".json", {"kind": "synthetic", "method": s.method, "dataset": s.dataset,
                                    "ipc": s.ipc, "set": s.index, "seed": seed, "config": cfg.__dict__, "wall_seconds": wall,
                                    "seconds_per_iteration": wall / max(1, len(ran)),
                                    "net_updates_per_iteration": float(np.mean(net_updates)) if net_updates else 0.0,
                                    "final_loss": losses[-1] if losses else None,
                                    "peak_memory": peak_memory(dev),  # DC Table T15's memory column
                                    "provenance": provenance()})
    ckpt.unlink(missing_ok=True)
