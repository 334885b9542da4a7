"""Stage wholeset: one evaluation network trained on the whole training set (its features, its forgetting counts
and its test accuracy, one value of the whole-dataset upper bound)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..coreset import CorrectnessTrace, forgetting_counts, penultimate_features
from ..io import provenance, write_json, write_npz, write_safetensors
from ..runtime import Progress
from ..train import test_accuracy, trained_model
from ..jobs import WholesetJob
from .common import device, load_data

log = logging.getLogger("dcpipe")


def wholeset(job: WholesetJob, prepared: Path, weights_out: Path, features_out: Path, forgetting_out: Path,
             result_out: Path) -> None:
    """Train whole-set network `job.net` (of coresets.whole_models) with the one training loop, and save its
    weights, the penultimate features of every training image (herding, k-center) and its forgetting counts (from
    the correctness trace of its own training): coreset set k selects from network k's evidence. Its test
    accuracy is one of the models behind the whole-dataset upper bound (DC Table 1, last column). The seed is
    the group's and network `net` is drawn from (seed, net), so network k is the same whatever the number of
    networks the file asks for."""
    dataset, model, net, cfg, seed = job.dataset, job.model, job.net, job.cfg, job.seed
    dev = device(job.env)
    d = load_data(job.env, prepared, dev)
    bar = Progress(cfg.epochs, f"wholeset {dataset} {model} net{net}", 1)
    trace = CorrectnessTrace(d.y_train, on_epoch=lambda e, acc: bar(e - 1, acc))  # logs the training accuracy
    cpu0 = time.process_time()  # core-seconds: the budget's unit on a shared machine, where wall time varies
    t0 = time.perf_counter()
    trained = trained_model(model, net, d.x_train, d.y_train, d.num_classes, cfg, seed, observe=trace)
    train_seconds = time.perf_counter() - t0
    bar.close()
    acc = test_accuracy(trained, d.x_test, d.y_test, cfg.test_batch, cfg.test_precision)
    log.info("wholeset %s net %d: test accuracy %.4f (%.0f s)", dataset, net, acc, time.perf_counter() - t0)
    write_safetensors(weights_out, {k: v.detach().contiguous().cpu() for k, v in trained.state_dict().items()})
    t1 = time.perf_counter()
    # float16 on disk: 60,000 x 2048 features are 250 MB instead of 500 (l2 distances keep 3 digits)
    feats = penultimate_features(trained, d.x_train, cfg.test_batch, cfg.test_precision)
    write_npz(features_out, features=feats.numpy().astype(np.float16))
    feature_seconds = time.perf_counter() - t1
    correct = trace.trace()
    counts = forgetting_counts(correct).numpy()
    write_npz(forgetting_out, counts=counts, correct=correct.numpy())
    write_json(result_out, {"dataset": dataset, "model": model, "net": net, "seed": seed,
                            "train_config": cfg.__dict__, "n_train_images": len(d.y_train),
                            "n_test_images": len(d.y_test), "accuracy": acc,
                            "train_accuracy_per_epoch": [float(r) for r in correct.double().mean(1)],
                            "forgetting": {"never_learnt": int(np.isinf(counts).sum()),
                                           "never_forgotten": int((counts == 0).sum()),
                                           "max_finite": float(counts[np.isfinite(counts)].max(initial=0))},
                            "feature_dim": int(feats.shape[1]), "feature_seconds": feature_seconds,
                            "wall_seconds": time.perf_counter() - t0,
                            "seconds_per_epoch": train_seconds / cfg.epochs,
                            "cpu_seconds": time.process_time() - cpu0, "threads": torch.get_num_threads(),
                            "provenance": provenance()})
