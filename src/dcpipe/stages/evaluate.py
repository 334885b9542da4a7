"""Stages evaluate and evaluate_cross: fresh networks trained on one set and tested on the whole test set."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..config import batched, evaluation_model_for, models_per_set, train_config
from ..io import provenance, read_json, resumable, write_json
from ..models import build_model, has_batchnorm
from ..runtime import Progress
from ..seeding import derive_seed
from ..train import train_models, train_models_batched
from .common import device, load_data, training_set

log = logging.getLogger("dcpipe")


def use_batched_training(params, model: str, device) -> bool:
    """evaluate.batched: on | off | auto (on CUDA, where one wide computation removes launch overhead); never for
    BatchNorm networks, whose running statistics vmap cannot batch."""
    choice = batched(params)
    if choice == "off" or (choice == "auto" and torch.device(device).type != "cuda"):
        return False
    return not has_batchnorm(build_model(model, 1, 10, (28, 28)))


def evaluate(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, train_set: Path,
             out: Path) -> None:
    """The set's own evaluation network (config.evaluation_model_for)."""
    _evaluate(params, dataset, ipc, method, index, prepared, train_set, out, None)


def evaluate_cross(params, dataset: str, ipc: int, method: str, index: int, prepared: Path, train_set: Path,
                   out: Path, model: str) -> None:
    """A cross study's set trained on the evaluation network `model` (artifacts.EVAL_ON), as named."""
    _evaluate(params, dataset, ipc, method, index, prepared, train_set, out, model)


def _evaluate(params, dataset, ipc, method, index, prepared, train_set, out, model) -> None:
    dev = device(params)
    d = load_data(params, prepared, dev)
    x, y = training_set(train_set, d)
    cfg = train_config(params, dataset, ipc, method)
    n = models_per_set(params, method)
    seed = derive_seed(params["seed"], "evaluate", dataset, ipc, method, index)
    if model is None:
        model = evaluation_model_for(params, method)
    else:
        seed = derive_seed(seed, "on", model)  # each evaluation network of a set draws its own models
    bar = Progress(n, f"evaluate {dataset} ipc{ipc} {method} set{index} on {model}", 1)
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
    if use_batched_training(params, model, dev) and len(done) < n:
        # one stack of models: the same accuracies as one by one (tests/test_batched_training.py), no per-model
        # checkpoint; measured slower than the loop on a 2-core CPU (reports/records/bench.json), hence "auto" = CUDA
        accs = done + train_models_batched(model, n - len(done), x, y, d.x_test, d.y_test, d.num_classes, cfg,
                                           seed, first=len(done))
    else:
        accs = train_models(model, n, x, y, d.x_test, d.y_test, d.num_classes, cfg, seed, progress=progress,
                            done=done)
    bar.close()
    write_json(out, {"dataset": dataset, "ipc": ipc, "method": method, "set": index, "model": model,
                     "seed": seed, "train_config": cfg.__dict__, "n_train_images": len(y),
                     "n_test_images": len(d.y_test), "accuracies": accs, "mean": float(np.mean(accs)),
                     "std": float(np.std(accs)), "wall_seconds": time.perf_counter() - t0,
                     "provenance": provenance(), "train_set_meta": read_json(str(train_set) + ".json")})
    partial.finish()
