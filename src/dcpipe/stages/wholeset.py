"""Stage wholeset: the evaluation network trained on the whole training set (features, forgetting counts and
the whole-dataset upper bound)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ..coreset import CorrectnessTrace, forgetting_counts, penultimate_features
from ..io import atomic_path, provenance, read_npz, write_json, write_npz
from ..runtime import Progress
from ..train import test_accuracy, trained_model
from ..jobs import WholesetJob
from .common import device, load_data

log = logging.getLogger("dcpipe")


def wholeset(job: WholesetJob, prepared: Path, weights_out: Path, features_out: Path, forgetting_out: Path,
             result_out: Path) -> None:
    """Train `coresets.whole_models` networks on the whole training set with the one training loop. Model 0's
    weights, its penultimate features of every training image (herding, k-center) and its forgetting counts
    (from the correctness trace of its own training) are saved; the test accuracies of all models give the
    whole-dataset upper bound (DC Table 1, last column)."""
    dataset, model, cfg, n_models, seed = job.dataset, job.model, job.cfg, job.models, job.seed
    dev = device(job.env)
    d = load_data(job.env, prepared, dev)
    bar = Progress(cfg.epochs, f"wholeset {dataset} {model} model0", 1)
    trace = CorrectnessTrace(d.y_train, on_epoch=lambda e, acc: bar(e - 1, acc))  # logs the training accuracy
    accs, seconds, train_seconds = [], [], []
    cpu0 = time.process_time()  # core-seconds: the budget's unit on a shared machine, where wall time varies
    for i in range(n_models):
        t0 = time.perf_counter()
        net = trained_model(model, i, d.x_train, d.y_train, d.num_classes, cfg, seed, observe=trace if i == 0 else None)
        train_seconds.append(time.perf_counter() - t0)
        accs.append(test_accuracy(net, d.x_test, d.y_test, cfg.test_batch, cfg.test_precision))
        seconds.append(time.perf_counter() - t0)
        log.info("wholeset %s model %d: test accuracy %.4f (%.0f s)", dataset, i, accs[-1], seconds[-1])
        if i == 0:
            bar.close()
            with atomic_path(weights_out) as tmp:
                save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp))
            t1 = time.perf_counter()
            # float16 on disk: 60,000 x 2048 features are 250 MB instead of 500 (l2 distances keep 3 digits)
            feats = penultimate_features(net, d.x_train, cfg.test_batch, cfg.test_precision)
            write_npz(features_out, features=feats.numpy().astype(np.float16))
            feature_seconds = time.perf_counter() - t1
            correct = trace.trace()
            write_npz(forgetting_out, counts=forgetting_counts(correct).numpy(), correct=correct.numpy())
    counts = read_npz(forgetting_out)["counts"]
    write_json(result_out, {"dataset": dataset, "model": model, "seed": seed, "train_config": cfg.__dict__,
                            "n_train_images": len(d.y_train), "n_test_images": len(d.y_test),
                            "accuracies": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                            "train_accuracy_per_epoch": [float(r.mean()) for r in read_npz(forgetting_out)["correct"]],
                            "forgetting": {"never_learnt": int(np.isinf(counts).sum()),
                                           "never_forgotten": int((counts == 0).sum()),
                                           "max_finite": float(counts[np.isfinite(counts)].max(initial=0))},
                            "feature_dim": int(feats.shape[1]), "feature_seconds": feature_seconds,
                            "seconds_per_model": seconds, "wall_seconds": sum(seconds) + feature_seconds,
                            "seconds_per_epoch": float(np.mean(train_seconds)) / cfg.epochs,
                            "cpu_seconds": time.process_time() - cpu0, "threads": torch.get_num_threads(), "provenance": provenance()})
