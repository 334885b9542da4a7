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
from .common import device, load_data, training_set

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
    s, cfg, n, model, seed = job.set, job.cfg, job.models, job.model, job.seed
    dev = device(s.env)
    d = load_data(s.env, prepared, dev)
    x, y = training_set(train_set, d)
    bar = Progress(n, f"evaluate {s.name} on {model}", 1)
    # model i depends on (seed, i) alone, so a resumed job retrains only the unfinished ones and ends bit-identical
    partial = resumable(out, {"seed": seed, "model": model, "train_config": cfg.__dict__, "n_train_images": len(y)})
    done = partial.done[:n]
    if done:
        log.info("resuming from %s: %d of %d models done", partial.path, len(done), n)
    finished = list(done)

    def progress(i, acc):
        finished.append(acc)
        partial.save(finished)
        bar(i, acc)

    t0 = time.perf_counter()
    if use_batched_training(job.batched, model, dev) and len(done) < n:
        # one stack of models: the same accuracies as one by one (tests/test_batched_training.py), no per-model
        # checkpoint; measured slower than the loop on a 2-core CPU (reports/records/bench.json), hence "auto" = CUDA
        accs = done + train_models_batched(model, n - len(done), x, y, d.x_test, d.y_test, d.num_classes, cfg,
                                           seed, first=len(done))
    else:
        accs = train_models(model, n, x, y, d.x_test, d.y_test, d.num_classes, cfg, seed, progress=progress,
                            done=done)
    bar.close()
    write_json(out, {"dataset": s.dataset, "ipc": s.ipc, "method": s.method, "set": s.index, "model": model,
                     "seed": seed, "train_config": cfg.__dict__, "n_train_images": len(y),
                     "n_test_images": len(d.y_test), "accuracies": accs, "mean": float(np.mean(accs)),
                     "std": float(np.std(accs)), "wall_seconds": time.perf_counter() - t0,
                     "provenance": provenance(), "train_set_meta": read_json(str(train_set) + ".json")})
    partial.finish()
