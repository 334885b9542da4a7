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

import itertools
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .models import ACTS, NORMS, POOLS, build_model, convnet_name, has_batchnorm
from .seeding import derive_seed, generator
from .train import TrainConfig, stacked_accuracies, test_accuracy, train_stacked, trained_model

log = logging.getLogger("dcpipe")

WIDTHS = (32, 64, 128, 256)
DEPTHS = (1, 2, 3, 4)
FACTORS = {"width": WIDTHS, "depth": DEPTHS, "norm": NORMS, "act": ACTS, "pool": POOLS}
EARLY_STOPPING = "early_stopping"  # the proxy that is not a set: the whole training set, few steps


@dataclass(frozen=True)
class Arch:
    width: int
    depth: int
    norm: str
    act: str
    pool: str

    @property
    def name(self) -> str:
        return convnet_name(self.width, self.depth, self.norm, self.act, self.pool)


# The search space, in a fixed order: an architecture's index is its identity in every artifact.
SPACE: tuple[Arch, ...] = tuple(Arch(*t) for t in itertools.product(*FACTORS.values()))


def subspace(widths=WIDTHS) -> dict[str, tuple]:
    """The factors' levels, with the widths restricted (the CPU default searches the narrow half)."""
    unknown = sorted(set(widths) - set(WIDTHS))
    if unknown:
        raise ValueError(f"widths {unknown} are not in the search space; valid: {', '.join(map(str, WIDTHS))}")
    return {**FACTORS, "width": tuple(w for w in WIDTHS if w in widths)}


def stratified_sample(n: int, seed: int, factors: dict[str, tuple] = FACTORS) -> list[int]:
    """n distinct architectures of the (sub)space `factors` (sorted space indices) in which every level of every
    factor appears equally often, to within one (each factor's levels are dealt out round-robin, then shuffled
    independently and zipped together; a draw with a duplicate architecture is redrawn)."""
    size = math.prod(len(v) for v in factors.values())
    if not 1 <= n <= size:
        raise ValueError(f"sample size {n} is not in 1..{size}")
    index = {a: i for i, a in enumerate(SPACE)}
    if n == size:
        return sorted(index[Arch(*t)] for t in itertools.product(*factors.values()))
    if n > size // 2:  # the complement of a balanced sample is balanced (the whole (sub)space is)
        every = {index[Arch(*t)] for t in itertools.product(*factors.values())}
        return sorted(every - set(stratified_sample(size - n, seed, factors)))
    rng = np.random.default_rng(seed)
    columns = []
    for levels in factors.values():
        extra = n % len(levels)  # which levels get one more copy: random, not the first ones
        col = [levels[i % len(levels)] for i in range(n - extra)] + [levels[c] for c in
                                                                     rng.choice(len(levels), extra, replace=False)]
        columns.append([col[i] for i in rng.permutation(n)])
    # Repair duplicates by swapping one factor's values between two rows: swaps keep every factor's counts.
    for _ in range(100_000):
        rows = list(zip(*columns))
        seen, dup = set(), None
        for i, r in enumerate(rows):
            if r in seen:
                dup = i
                break
            seen.add(r)
        if dup is None:
            return sorted(index[Arch(*r)] for r in rows)
        j, f = int(rng.integers(n)), int(rng.integers(len(columns)))
        before = len(set(rows))
        columns[f][dup], columns[f][j] = columns[f][j], columns[f][dup]
        if len(set(zip(*columns))) < before:
            columns[f][dup], columns[f][j] = columns[f][j], columns[f][dup]
    raise RuntimeError(f"no duplicate-free stratified sample of {n} found")  # pragma: no cover


def candidates(params) -> list[int]:
    """The architectures this parameter file searches: all of nas.widths' (sub)space (720 with every width), or
    a stratified sample of nas.architectures of them."""
    nas = params["nas"]
    factors = subspace(nas.get("widths", WIDTHS))
    n = math.prod(len(v) for v in factors.values()) if nas["architectures"] == "all" else nas["architectures"]
    return stratified_sample(n, derive_seed(params["seed"], "nas", "sample"), factors)


def shard(indices: list[int], k: int, shards: int) -> list[int]:
    """Shard k of `shards`: every shards-th candidate (strided, so cheap and costly architectures mix)."""
    return indices[k::shards]


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

def search_dataset(dataset: str) -> str:
    """Name of the prepared variant whose training split excludes the NAS validation images."""
    return f"{dataset}_nas"


def make_search_split(prepared: Path, out: Path, n_validation: int, seed: int) -> dict:
    """Hold `n_validation` random training images out as the validation set (DC appendix A: 5,000 random
    images of CIFAR-10's 50,000). The variant keeps the test split and stores the validation images beside it."""
    from .io import provenance, read_json, read_npz, write_json, write_npz

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
    from .data import normalise
    from .io import read_json, read_npz

    z, meta = read_npz(prepared), read_json(str(prepared) + ".json")
    return normalise(z["x_val"], meta["mean"], meta["std"], device), torch.as_tensor(z["y_val"], device=device)


# ---- training ------------------------------------------------------------------------------------------

def train_config(params, proxy: str, n_proxy_images: int) -> TrainConfig:
    """Proxy training: nas.epochs epochs (paper: 100) with the evaluation optimiser. Early stopping: the whole
    training set for the same number of SGD steps as a set of n_proxy_images (DC section 3.2)."""
    e, nas = params["evaluate"], params["nas"]
    keys = {k: e[k] for k in ("lr", "momentum", "weight_decay", "batch", "test_batch", "test_precision") if k in e}
    cfg = TrainConfig(epochs=nas["epochs"], **keys)
    if proxy == EARLY_STOPPING:
        return TrainConfig(epochs=nas["epochs"], steps=nas["epochs"] * math.ceil(n_proxy_images / cfg.batch), **keys)
    return cfg


def whole_config(params) -> TrainConfig:
    e = params["evaluate"]
    keys = {k: e[k] for k in ("lr", "momentum", "weight_decay", "batch", "test_batch", "test_precision") if k in e}
    return TrainConfig(epochs=params["nas"]["whole_epochs"], **keys)


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


def proxy_seed(params, proxy: str, arch: Arch) -> int:
    return derive_seed(params["seed"], "nas", params["nas"]["dataset"], proxy, arch.name)


def whole_seed(params, arch: Arch) -> int:
    return derive_seed(params["seed"], "nas", params["nas"]["dataset"], "whole", arch.name)


def _fingerprint(params, extra) -> dict:
    return json.loads(json.dumps({"nas": params["nas"], "evaluate": params["evaluate"], "seed": params["seed"], **extra}))


def run_shard(params, k: int, prepared: Path, proxy_sets: dict[str, Path], out: Path, progress=None) -> None:
    """Stage: train shard k's architectures on every proxy; record validation accuracies and measured times.
    Checkpoints after each architecture (a killed job resumes after the last finished one)."""
    from .io import provenance, read_json, write_json
    from .pipeline import load_data, training_set
    from .runtime import pick_device

    nas = params["nas"]
    dev = pick_device(params["runtime"].get("device", "auto"))
    d = load_data(params, prepared, dev)
    x_val, y_val = load_validation(prepared, dev)
    sets = {p: training_set(path, d) for p, path in proxy_sets.items()}
    n_proxy = nas["ipc"] * d.num_classes
    sets[EARLY_STOPPING] = (d.x_train, d.y_train)
    proxies = [p for p in nas["proxies"]]
    mine = shard(candidates(params), k, nas["shards"])
    partial = Path(str(out) + ".partial.json")
    fp = _fingerprint(params, {"shard": k})
    rows = []
    if partial.exists() and read_json(partial).get("fingerprint") == fp:
        rows = read_json(partial)["rows"]
        log.info("resuming shard %d: %d of %d architectures done", k, len(rows), len(mine))
    for idx in mine[len(rows):]:
        arch = SPACE[idx]
        row = {"index": idx, "arch": arch.name, **arch.__dict__, "proxies": {}}
        for p in proxies:
            x, y = sets[p]
            cfg = train_config(params, p, n_proxy)
            accs, t_train, t_val = train_and_score(arch, nas["repeats"], x, y, {"val": (x_val, y_val)},
                                                   d.num_classes, cfg, proxy_seed(params, p, arch), nas["batched"])
            row["proxies"][p] = {"val": accs["val"], "val_mean": float(np.mean(accs["val"])), "train_seconds": t_train,
                                 "val_seconds": t_val, "images": len(y), "steps": _steps(cfg, len(y))}
        rows.append(row)
        write_json(partial, {"fingerprint": fp, "rows": rows})
        if progress:
            progress(len(rows) - 1, row["proxies"][proxies[0]]["val_mean"])
    write_json(out, {"shard": k, "shards": nas["shards"], "dataset": nas["dataset"], "proxies": proxies,
                     "repeats": nas["repeats"], "epochs": nas["epochs"], "batched": nas["batched"],
                     "n_validation": len(y_val), "rows": rows, "cpu_seconds": _cpu_seconds(), "provenance": provenance()})
    partial.unlink(missing_ok=True)


def _cpu_seconds() -> float:
    """CPU time of this process (user + system): the job's cost on a shared machine, where wall time is not."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _steps(cfg: TrainConfig, n: int) -> int:
    from .train import schedule

    return schedule(cfg, n)[2]


def read_shards(paths: list[Path]) -> list[dict]:
    from .io import read_json

    rows = [r for p in paths for r in read_json(p)["rows"]]
    return sorted(rows, key=lambda r: r["index"])


def proxy_scores(rows: list[dict], proxy: str) -> dict[int, float]:
    return {r["index"]: r["proxies"][proxy]["val_mean"] for r in rows}


def ground_truth_candidates(params, rows: list[dict]) -> list[int]:
    """Every architecture some proxy ranks in its top k: all the whole-dataset training the metrics need."""
    k = params["nas"]["top"]
    return sorted({i for p in params["nas"]["proxies"] for i in top(proxy_scores(rows, p), k)})


def run_ground_truth(params, g: int, prepared: Path, shard_files: list[Path], out: Path, progress=None) -> None:
    """Stage: whole-training-set runs (validation and test accuracy) of ground-truth shard g's architectures."""
    from .io import provenance, read_json, write_json
    from .pipeline import load_data
    from .runtime import pick_device

    nas = params["nas"]
    dev = pick_device(params["runtime"].get("device", "auto"))
    d = load_data(params, prepared, dev)
    x_val, y_val = load_validation(prepared, dev)
    rows_proxy = read_shards(shard_files)
    mine = shard(ground_truth_candidates(params, rows_proxy), g, nas["ground_truth_shards"])
    # each proxy's best-ranked architecture is the search's answer: more runs for its test accuracy
    best = {top(proxy_scores(rows_proxy, p), 1)[0] for p in nas["proxies"]}
    cfg = whole_config(params)
    partial = Path(str(out) + ".partial.json")
    fp = _fingerprint(params, {"ground_truth_shard": g, "candidates": mine})
    rows = []
    if partial.exists() and read_json(partial).get("fingerprint") == fp:
        rows = read_json(partial)["rows"]
    for idx in mine[len(rows):]:
        arch = SPACE[idx]
        repeats = nas["best_repeats"] if idx in best else nas["whole_repeats"]
        accs, t_train, t_score = train_and_score(arch, repeats, d.x_train, d.y_train,
                                                 {"val": (x_val, y_val), "test": (d.x_test, d.y_test)}, d.num_classes,
                                                 cfg, whole_seed(params, arch), nas["batched"])
        rows.append({"index": idx, "arch": arch.name, "runs": repeats, "val": accs["val"], "test": accs["test"],
                     "val_mean": float(np.mean(accs["val"])), "test_mean": float(np.mean(accs["test"])),
                     "train_seconds": t_train, "score_seconds": t_score, "images": len(d.y_train),
                     "steps": _steps(cfg, len(d.y_train))})
        write_json(partial, {"fingerprint": fp, "rows": rows})
        if progress:
            progress(len(rows) - 1, rows[-1]["val_mean"])
    write_json(out, {"ground_truth_shard": g, "epochs": cfg.epochs, "repeats": nas["whole_repeats"],
                     "n_train": len(d.y_train), "n_validation": len(y_val), "n_test": len(d.y_test), "rows": rows,
                     "cpu_seconds": _cpu_seconds(), "provenance": provenance()})
    partial.unlink(missing_ok=True)


def run_split(params, prepared: Path, out: Path) -> None:
    """Stage: the search split (training images minus nas.validation held-out ones)."""
    meta = make_search_split(prepared, out, params["nas"]["validation"],
                             derive_seed(params["seed"], "nas", params["nas"]["dataset"], "validation"))
    log.info("search split of %s: %d training / %d validation images", meta["held_out_from"]["dataset"],
             meta["n_train"], meta["n_validation"])


def check_shard(params, key: str, k: int) -> None:
    from .config import ParamsError

    if not 0 <= k < params["nas"][key]:
        raise ParamsError(f"--shard {k}: nas.{key} is {params['nas'][key]} (shards 0..{params['nas'][key] - 1})")
