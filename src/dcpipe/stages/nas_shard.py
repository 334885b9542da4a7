"""Stage nas_shard: one shard of the NAS candidates trained on every proxy, scored on the validation split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import nas_train_config
from ..io import provenance, resumable, write_json
from ..nas import EARLY_STOPPING, SPACE, Arch, cpu_seconds, load_validation, steps, train_and_score
from ..plan import nas_shard as shard_of
from ..runtime import Progress
from ..seeding import derive_seed
from .common import device, load_data, training_set

log = logging.getLogger("dcpipe")


def arch_seed(params, proxy: str, arch: Arch) -> int:
    """The seed of an architecture's networks trained on a proxy (or "whole": the ground truth)."""
    return derive_seed(params["seed"], "nas", params["nas"]["dataset"], proxy, arch.name)


def fingerprint(params, **job) -> dict:
    """What a NAS job's rows depend on: its checkpoint is reused only while these are unchanged."""
    return {"nas": params["nas"], "evaluate": params["evaluate"], "seed": params["seed"], **job}


def nas_shard(params, k: int, prepared: Path, proxy_sets: dict[str, Path], out: Path) -> None:
    """Train shard k's architectures on every proxy; record validation accuracies and measured times.
    Checkpoints after each architecture (a killed job resumes after the last finished one)."""
    nas = params["nas"]
    dev = device(params)
    d = load_data(params, prepared, dev)
    x_val, y_val = load_validation(prepared, dev)
    sets = {p: training_set(path, d) for p, path in proxy_sets.items()}
    n_proxy = nas["ipc"] * d.num_classes
    sets[EARLY_STOPPING] = (d.x_train, d.y_train)
    proxies = list(nas["proxies"])
    mine = shard_of(params, k)
    partial = resumable(out, fingerprint(params, shard=k))
    rows = partial.done
    if rows:
        log.info("resuming shard %d: %d of %d architectures done", k, len(rows), len(mine))
    progress = Progress(len(mine), f"nas shard {k}", 1)
    for idx in mine[len(rows):]:
        arch = SPACE[idx]
        row = {"index": idx, "arch": arch.name, **arch.__dict__, "proxies": {}}
        for p in proxies:
            x, y = sets[p]
            cfg = nas_train_config(params, p, n_proxy)
            accs, t_train, t_val = train_and_score(arch, nas["repeats"], x, y, {"val": (x_val, y_val)},
                                                   d.num_classes, cfg, arch_seed(params, p, arch), nas["batched"])
            row["proxies"][p] = {"val": accs["val"], "val_mean": float(np.mean(accs["val"])), "train_seconds": t_train,
                                 "val_seconds": t_val, "images": len(y), "steps": steps(cfg, len(y))}
        rows.append(row)
        partial.save(rows)
        progress(len(rows) - 1, row["proxies"][proxies[0]]["val_mean"])
    write_json(out, {"shard": k, "shards": nas["shards"], "dataset": nas["dataset"], "proxies": proxies,
                     "repeats": nas["repeats"], "epochs": nas["epochs"], "batched": nas["batched"],
                     "n_validation": len(y_val), "rows": rows, "cpu_seconds": cpu_seconds(), "provenance": provenance()})
    partial.finish()
