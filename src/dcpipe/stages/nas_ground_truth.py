"""Stage nas_ground_truth: the architectures some proxy ranks in its top k, trained on the whole training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..jobs import NasJob
from ..io import provenance, resumable, write_json
from ..nas import cpu_seconds, ground_truth_candidates, load_validation, proxy_scores, read_shards, steps, top, \
    train_and_score
from ..nas_space import SPACE, shard
from ..runtime import Progress
from .common import device, load_data


def nas_ground_truth(job: NasJob, g: int, prepared: Path, shard_files: list[Path], out: Path) -> None:
    """Whole-training-set runs (validation and test accuracy) of ground-truth shard g's architectures."""
    dev = device(job.env)
    d = load_data(job.env, prepared, dev)
    x_val, y_val = load_validation(prepared, dev)
    rows_proxy = read_shards(shard_files)
    mine = shard(ground_truth_candidates(rows_proxy, list(job.proxies), job.top), g, job.ground_truth_shards)
    # each proxy's best-ranked architecture is the search's answer: more runs for its test accuracy
    best = {top(proxy_scores(rows_proxy, p), 1)[0] for p in job.proxies}
    cfg = job.whole
    partial = resumable(out, {**job.fingerprint, "ground_truth_shard": g, "candidates": mine})
    rows = partial.done
    progress = Progress(len(mine), f"nas ground truth {g}", 1)
    for idx in mine[len(rows):]:
        arch = SPACE[idx]
        repeats = job.best_repeats if idx in best else job.whole_repeats
        accs, t_train, t_score = train_and_score(arch, repeats, d.x_train, d.y_train,
                                                 {"val": (x_val, y_val), "test": (d.x_test, d.y_test)}, d.num_classes,
                                                 cfg, job.arch_seed("whole", arch), job.batched)
        rows.append({"index": idx, "arch": arch.name, "runs": repeats, "val": accs["val"], "test": accs["test"],
                     "val_mean": float(np.mean(accs["val"])), "test_mean": float(np.mean(accs["test"])),
                     "train_seconds": t_train, "score_seconds": t_score, "images": len(d.y_train),
                     "steps": steps(cfg, len(d.y_train))})
        partial.save(rows)
        progress(len(rows) - 1, rows[-1]["val_mean"])
    write_json(out, {"ground_truth_shard": g, "epochs": cfg.epochs, "repeats": job.whole_repeats,
                     "n_train": len(d.y_train), "n_validation": len(y_val), "n_test": len(d.y_test), "rows": rows,
                     "cpu_seconds": cpu_seconds(), "provenance": provenance()})
    partial.finish()
