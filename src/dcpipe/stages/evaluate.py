"""Stage evaluate: fresh networks trained on one set and tested on the whole test set (stage evaluate_cross trains a
cross study's sets the same way)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..jobs import EvaluateJob
from ..io import provenance, read_json, resumable, write_json
from ..models import build_model, has_batchnorm
from ..runtime import Progress
from ..train import train_models, train_models_batched
from ..sets import read_set
from .common import device, load_data

log = logging.getLogger("dcpipe")


def use_batched_training(choice: str, model: str, device) -> bool:
    """evaluate.batched: on | off | auto (on CUDA, where one wide computation removes launch overhead); never for
    BatchNorm networks, whose running statistics vmap cannot batch."""
    if choice == "off" or (choice == "auto" and torch.device(device).type != "cuda"):
        return False
    return not has_batchnorm(build_model(model, 1, 10, (28, 28)))


def evaluate(job: EvaluateJob, prepared: Path, train_set: Path, out: Path) -> None:
    """The set's own evaluation network (jobs.evaluate_job)."""
    train_and_test(job, prepared, train_set, out)


def train_and_test(job: EvaluateJob, prepared: Path, train_set: Path, out: Path) -> None:
    """Train and test the job's models on the set. A set with soft labels is scored on them (`accuracies`, the
    score of record), and the same models (same seeds) are trained on its argmax labels too (`hard_label`): the
    difference is what the soft labels bought."""
    s, cfg, n, model, seed = job.set, job.cfg, job.models, job.model, job.seed
    dev = device(s.env)
    d = load_data(s.env, prepared, dev)
    x, y, soft = read_set(train_set, d)  # the one set check, before any network trains
    groups = [None] if soft is None else [soft, None]  # the training targets: soft labels first, then y
    bar = Progress(n * len(groups), f"evaluate {s.name} on {model}", 1)
    # model i depends on (seed, i) alone, so a resumed job retrains only the unfinished ones and ends bit-identical;
    # the checkpoint lists the soft-label models, then the hard-label ones
    fingerprint = {"seed": seed, "model": model, "train_config": cfg.__dict__, "n_train_images": len(y)}
    partial = resumable(out, fingerprint if soft is None else {**fingerprint, "labels": "soft"})
    finished = list(partial.done[:n * len(groups)])
    if finished:
        log.info("resuming from %s: %d of %d models done", partial.path, len(finished), n * len(groups))

    def progress(i, acc):
        finished.append(acc)
        partial.save(finished)
        bar(len(finished) - 1, acc)

    seconds = []
    for k, targets in enumerate(groups):
        t0 = time.perf_counter()
        done = finished[k * n:(k + 1) * n]
        if len(done) < n and use_batched_training(job.batched, model, dev):
            # one stack of models: the same accuracies as one by one (tests/test_batched_training.py), no per-model
            # checkpoint; slower than the loop on a 2-core CPU (reports/records/bench.json), hence "auto" = CUDA
            finished += train_models_batched(model, n - len(done), x, y, d.x_test, d.y_test, d.num_classes, cfg,
                                             seed, first=len(done), soft=targets)
            partial.save(finished)
        elif len(done) < n:
            train_models(model, n, x, y, d.x_test, d.y_test, d.num_classes, cfg, seed, progress=progress, done=done,
                         soft=targets)
        seconds.append(time.perf_counter() - t0)
    bar.close()
    accs = finished[:n]
    result = {"dataset": s.dataset, "ipc": s.ipc, "method": s.method, "set": s.index, "model": model, "seed": seed,
              "train_config": cfg.__dict__, "n_train_images": len(y), "n_test_images": len(d.y_test),
              "labels": "hard" if soft is None else "soft", "accuracies": accs, "mean": float(np.mean(accs)),
              "std": float(np.std(accs)), "wall_seconds": seconds[0], "provenance": provenance(),
              "train_set_meta": read_json(str(train_set) + ".json")}
    if soft is not None:
        hard = finished[n:]
        result["hard_label"] = {"accuracies": hard, "mean": float(np.mean(hard)), "std": float(np.std(hard)),
                                "wall_seconds": seconds[1]}
    write_json(out, result)
    partial.finish()
