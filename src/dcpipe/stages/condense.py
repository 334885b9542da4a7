"""Stage condense: one synthetic set by gradient or distribution matching (resumes from its checkpoint if killed)."""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import numpy as np

from ..config import condense_config, runtime
from ..dm import synthesise
from ..io import atomic_path, provenance, remove_stale_temps, write_json, write_npz
from ..runtime import Progress
from .common import device, load_data, seed_of_set

log = logging.getLogger("dcpipe")


def condense(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, out: Path,
             loss_csv: Path) -> None:
    dev = device(params)
    d = load_data(params, prepared, dev)
    cfg = condense_config(params, ipc, method)
    seed = seed_of_set(params, dataset, ipc, method, index)
    ckpt = Path(str(out) + ".ckpt.safetensors")
    for p in (ckpt, out, Path(str(out) + ".json"), loss_csv):  # a SIGKILL mid-write leaves its temporary behind
        for stale in remove_stale_temps(p):
            log.info("removed %s, left by a killed run", stale)
    bar = Progress(cfg.iterations, f"condense {dataset} ipc{ipc} {method} set{index}", runtime(params).log_every)
    ran = []  # iterations this process ran: a resumed run's wall time covers only those

    def progress(it, loss):
        ran.append(it)
        bar(it, loss)

    t0 = time.perf_counter()
    images, labels, losses, net_updates = synthesise(d, cfg, seed, checkpoint=ckpt, progress=progress)
    bar.close()
    wall = time.perf_counter() - t0
    with atomic_path(loss_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "matching_loss", "net_updates"])
        w.writerows(zip(range(len(losses)), losses, net_updates))
    write_npz(out, images=images.cpu().numpy().astype(np.float32), labels=labels.cpu().numpy())
    write_json(str(out) + ".json", {"kind": "synthetic", "method": method, "dataset": dataset, "ipc": ipc,
                                    "set": index, "seed": seed, "config": cfg.__dict__, "wall_seconds": wall,
                                    "seconds_per_iteration": wall / max(1, len(ran)),
                                    "net_updates_per_iteration": float(np.mean(net_updates)) if net_updates else 0.0,
                                    "final_loss": losses[-1] if losses else None, "provenance": provenance()})
    ckpt.unlink(missing_ok=True)
