"""`dcpipe score`: one fixed protocol for a distilled set made by anyone.

The set (.npz, .safetensors, the authors' `res_*.pt`: a dict whose `data` is a list of [images, labels], or MTT's
and DATM's folder of `images_best.pt` and `labels_best.pt`) is read without unpickling code
(torch.load(weights_only=True)), checked against a prepared dataset before any training, and scored by N fresh
networks trained under the parameter file's `score:` protocol, on its soft labels where it has them. Only the final
network is tested, once: no epoch is picked on the test set. Beside it, the same protocol trains on random real
images of the same size (as many per class), so the gap says what the distillation bought.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np
import torch

from .data import Data, sample_class
from .seeding import derive_seed, generator
from .score_config import ScoreConfig
from .sets import check_set
from .train import train_models

def checked(images: np.ndarray, labels: np.ndarray, d: Data, pixels: str = "normalised", where: str = "set",
            soft: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The set as normalised float tensors on the data's device (images, labels, soft labels or None), or the one
    set check's ArtifactError (dcpipe.sets.check_set), before any network trains."""
    return tuple(check_set(images, labels, d, where, pixels, soft=soft))


def random_real(d: Data, labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random real training images of the same size: as many of each class as the set has."""
    gen = generator(derive_seed(seed, "random real"))
    counts = torch.bincount(labels.cpu(), minlength=d.num_classes).tolist()
    idx = torch.cat([sample_class(ix, n, gen) for ix, n in zip(d.class_indices(), counts) if n])
    return d.x_train[idx], d.y_train[idx]


def stats(accuracies: list[float]) -> dict:
    """Mean and std (population, as the papers) in %, and a 95% t-interval of the mean (None for one model)."""
    a = 100 * np.asarray(accuracies, np.float64)
    out = {"mean": float(a.mean()), "std": float(a.std()), "n": len(a), "ci95": None}
    if len(a) > 1:
        from scipy.stats import t  # heavy, and only the interval needs it
        half = float(t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
        out["ci95"] = [out["mean"] - half, out["mean"] + half]
    return out


def score(x: torch.Tensor, y: torch.Tensor, d: Data, cfg: ScoreConfig, seed: int, progress=None,
          soft: torch.Tensor | None = None) -> dict:
    """Train cfg.models fresh networks on (x, y) (on its soft labels where given), and as many on random real
    images of the same size; test each final network once on the whole test set."""
    t0 = time.perf_counter()
    accs = train_models(cfg.model, cfg.models, x, y, d.x_test, d.y_test, d.num_classes, cfg.train,
                        derive_seed(seed, "set"), progress=progress, soft=soft)
    out = {"set": stats(accs), "accuracies": accs, "images": len(y), "labels": "hard" if soft is None else "soft",
           "images_per_class": torch.bincount(y.cpu(), minlength=d.num_classes).tolist(),
           "protocol": {"model": cfg.model, "models": cfg.models, "random_baseline": cfg.random_baseline,
                        "train": asdict(cfg.train), "test_epoch_picking": False},
           "set_seconds": time.perf_counter() - t0}
    if cfg.random_baseline:
        xr, yr = random_real(d, y, seed)
        real = train_models(cfg.model, cfg.models, xr, yr, d.x_test, d.y_test, d.num_classes, cfg.train,
                            derive_seed(seed, "random"))
        out.update(random_real=stats(real), random_accuracies=real,
                   gap_to_random=out["set"]["mean"] - 100 * float(np.mean(real)))
    out["wall_seconds"] = time.perf_counter() - t0
    return out


def summary_line(result: dict) -> str:
    s = result["set"]
    ci = "n/a (1 model)" if s["ci95"] is None else f"[{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]"
    soft = " on its soft labels" if result.get("labels") == "soft" else ""
    line = f"{s['mean']:.2f} ± {s['std']:.2f} % over {s['n']} models{soft}, 95% CI {ci}"
    if "gap_to_random" in result:
        line += f"; random real {result['random_real']['mean']:.2f} %, gap {result['gap_to_random']:+.2f} points"
    return line + f"; {result['wall_seconds']:.0f} s"
