"""Neural architecture search with proxy training sets (DC paper section 3.2, appendix A, Table 4, Figure F5).

The search space is 720 ConvNets: width W x depth D x norm N x activation A x pooling P. Every candidate is
trained on each proxy (random real images, herding, the DC condensed set, 10 img/cls; or "early stopping": the
whole training set for as many SGD steps as a proxy needs), scored on a validation split held out of the
training set, and ranked. Ground truth: the architectures some proxy ranks in its top 10, trained on the whole
training set (which is all the metrics need: the best-ranked one's test accuracy and the top-10 correlation).

The held-out validation images never reach a proxy: `make_search_split` writes a prepared-dataset variant
("<dataset>_nas") whose training split excludes them, and the coreset and condense stages run on that variant
unchanged.
"""

from __future__ import annotations

import math
import resource
import time
from pathlib import Path

import numpy as np
import torch

from .data import normalise
from .io import provenance, read_json, read_npz, write_json, write_npz
from .models import build_model, has_batchnorm
from .nas_space import Arch
from .train import TrainConfig, schedule, stacked_accuracies, test_accuracy, train_stacked, trained_model


# ---- ranking -------------------------------------------------------------------------------------------

def ranks(values) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as scipy.stats.rankdata's default)."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b) -> float:
    """Spearman's rank correlation: the Pearson correlation of the two rank vectors (nan if one is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def top(scores: dict[int, float], k: int) -> list[int]:
    """The k best architectures by score, best first (ties: the lower space index first)."""
    return sorted(scores, key=lambda i: (-scores[i], i))[:k]


# ---- data ----------------------------------------------------------------------------------------------

def make_search_split(prepared: Path, out: Path, n_validation: int, seed: int) -> dict:
    """Hold `n_validation` random training images out as the validation set (DC appendix A: 5,000 random
    images of CIFAR-10's 50,000). The variant keeps the test split and stores the validation images beside it."""
    z = read_npz(prepared)
    meta = read_json(str(prepared) + ".json")
    n = len(z["y_train"])
    if not 0 < n_validation < n:
        raise ValueError(f"nas.validation = {n_validation} must be between 1 and {n - 1} ({prepared} has {n} training images)")
    perm = np.random.default_rng(seed).permutation(n)
    val, keep = np.sort(perm[:n_validation]), np.sort(perm[n_validation:])
    write_npz(out, x_train=z["x_train"][keep], y_train=z["y_train"][keep], x_val=z["x_train"][val],
              y_val=z["y_train"][val], x_test=z["x_test"], y_test=z["y_test"], val_indices=val, train_indices=keep)
    new = {**meta, "dataset": Path(out).name.removesuffix(".npz"), "n_train": len(keep), "n_validation": len(val),
           "train_class_counts": np.bincount(z["y_train"][keep], minlength=meta["num_classes"]).tolist(),
           "validation_class_counts": np.bincount(z["y_train"][val], minlength=meta["num_classes"]).tolist(),
           "held_out_from": {"dataset": meta["dataset"], "seed": seed}, "provenance": provenance()}
    write_json(str(out) + ".json", new)
    return new


def load_validation(prepared: Path, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    z, meta = read_npz(prepared), read_json(str(prepared) + ".json")
    return normalise(z["x_val"], meta["mean"], meta["std"], device), torch.as_tensor(z["y_val"], device=device)


# ---- training ------------------------------------------------------------------------------------------

def train_and_score(arch: Arch, repeats: int, x, y, scored: dict, num_classes: int, cfg: TrainConfig, seed: int,
                    batched: bool) -> tuple[dict[str, list[float]], float, float]:
    """Train `repeats` fresh networks of one architecture on (x, y) and score each on every (x, y) of `scored`.
    Returns ({name: accuracies}, training seconds, scoring seconds). With `batched`, the repeats train as one
    stack of models (train.train_stacked, vmap); BatchNorm networks always train one by one."""
    with torch.device("meta"):
        bn = has_batchnorm(build_model(arch.name, x.shape[1], num_classes, tuple(x.shape[2:])))
    out = {k: [] for k in scored}
    if batched and not bn:
        t0 = time.perf_counter()
        params, buffers, base = train_stacked(arch.name, repeats, x, y, num_classes, cfg, seed)
        t1 = time.perf_counter()
        for k, (xs, ys) in scored.items():
            out[k] = stacked_accuracies(params, buffers, base, xs, ys, cfg)
        return out, t1 - t0, time.perf_counter() - t1
    t_train = t_score = 0.0
    for i in range(repeats):
        t0 = time.perf_counter()
        net = trained_model(arch.name, i, x, y, num_classes, cfg, seed)
        t1 = time.perf_counter()
        for k, (xs, ys) in scored.items():
            out[k].append(test_accuracy(net, xs, ys, cfg.test_batch, cfg.test_precision))
        t_train, t_score = t_train + t1 - t0, t_score + time.perf_counter() - t1
    return out, t_train, t_score


def cpu_seconds() -> float:
    """CPU time of this process (user + system): the job's cost on a shared machine, where wall time is not."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def steps(cfg: TrainConfig, n: int) -> int:
    """SGD steps of training on n images."""
    return schedule(cfg, n)[2]


def read_shards(paths: list[Path]) -> list[dict]:
    rows = [r for p in paths for r in read_json(p)["rows"]]
    return sorted(rows, key=lambda r: r["index"])


def proxy_scores(rows: list[dict], proxy: str) -> dict[int, float]:
    return {r["index"]: r["proxies"][proxy]["val_mean"] for r in rows}


def ground_truth_candidates(rows: list[dict], proxies: list[str], k: int) -> list[int]:
    """Every architecture some proxy ranks in its top k: all the whole-dataset training the metrics need."""
    return sorted({i for p in proxies for i in top(proxy_scores(rows, p), k)})
