"""Stage nas_shard: one shard of the NAS candidates trained on every proxy, scored on the validation split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..jobs import NasJob
from ..io import provenance, resumable, write_json
from ..nas import cpu_seconds, load_validation, steps, train_and_score
from ..nas_space import EARLY_STOPPING, SPACE
from ..runtime import Progress
from .common import device, load_data, training_set

log = logging.getLogger("dcpipe")


def nas_shard(job: NasJob, k: int, prepared: Path, proxy_sets: dict[str, Path], out: Path) -> None:
    """Train shard k's architectures on every proxy; record validation accuracies and measured times.
    Checkpoints after each architecture (a killed job resumes after the last finished one)."""
    dev = device(job.env)
    d = load_data(job.env, prepared, dev)
    x_val, y_val = load_validation(prepared, dev)
    sets = {p: training_set(path, d) for p, path in proxy_sets.items()}
    n_proxy = job.ipc * d.num_classes
    sets[EARLY_STOPPING] = (d.x_train, d.y_train)
    proxies = list(job.proxies)
    mine = list(job.architectures)
    partial = resumable(out, {**job.fingerprint, "shard": k})
    rows = partial.done
    if rows:
        log.info("resuming shard %d: %d of %d architectures done", k, len(rows), len(mine))
    progress = Progress(len(mine), f"nas shard {k}", 1)
    for idx in mine[len(rows):]:
        arch = SPACE[idx]
        row = {"index": idx, "arch": arch.name, **arch.__dict__, "proxies": {}}
        for p in proxies:
            x, y = sets[p]
            cfg = job.proxy_config(p, n_proxy)
            accs, t_train, t_val = train_and_score(arch, job.repeats, x, y, {"val": (x_val, y_val)},
                                                   d.num_classes, cfg, job.arch_seed(p, arch), job.batched)
            row["proxies"][p] = {"val": accs["val"], "val_mean": float(np.mean(accs["val"])), "train_seconds": t_train,
                                 "val_seconds": t_val, "images": len(y), "steps": steps(cfg, len(y))}
        rows.append(row)
        partial.save(rows)
        progress(len(rows) - 1, row["proxies"][proxies[0]]["val_mean"])
    write_json(out, {"shard": k, "shards": job.shards, "dataset": job.dataset, "proxies": proxies,
                     "repeats": job.repeats, "epochs": job.proxy.epochs, "batched": job.batched,
                     "n_validation": len(y_val), "rows": rows, "cpu_seconds": cpu_seconds(), "provenance": provenance()})
    partial.finish()
