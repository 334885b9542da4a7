"""`dcpipe score`: one fixed protocol for a distilled set made by anyone.

The set (.npz, .safetensors, or the authors' `res_*.pt`: a dict whose `data` is a list of [images, labels]) is
read without unpickling code (torch.load(weights_only=True)), checked against a prepared dataset before any
training, and scored by N fresh networks trained under the parameter file's `score:` protocol. Only the final
network is tested, once: no epoch is picked on the test set. Beside it, the same protocol trains on random real
images of the same size (as many per class), so the gap says what the distillation bought.
"""

from __future__ import annotations

import math
import pickle
import re
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_safetensors

from .data import Data, sample_class
from .errors import ArtifactError, ParamsError
from .io import read_npz, refused_pickle
from .seeding import derive_seed, generator
from .set_checks import non_finite_pixels, span
from .score_config import ScoreConfig
from .train import train_models

FORMATS = (".npz", ".safetensors", ".pt", ".pth")
PIXELS = ("normalised", "unit", "uint8")  # the dataset's mean/std already applied | floats in [0, 1] | 0-255


def load_set(path: str | Path, entry: int = -1) -> tuple[np.ndarray, np.ndarray, str]:
    """(images, labels, what was read) of a distilled set file. `entry`: which [images, labels] pair of a
    `res_*.pt` (the authors save one per experiment; DC-BENCH scores the last, as the default here)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ParamsError(f"{path}: unknown set format {path.suffix or '(none)'!r}; valid: {', '.join(FORMATS)}")
    if not path.is_file():
        raise ParamsError(f"{path}: no such file")
    if path.suffix == ".npz":
        z = read_npz(path, ("images", "labels"))
        return z["images"], z["labels"], "npz"
    if path.suffix == ".safetensors":
        try:
            t = load_safetensors(str(path))
        except (SafetensorError, OSError) as e:
            raise ArtifactError(f"{path}: not a readable safetensors file ({e})") from e
        if not {"images", "labels"} <= set(t):
            raise ArtifactError(f"{path}: has tensors {', '.join(sorted(t)) or '(none)'}, expected images and labels")
        return t["images"], t["labels"], "safetensors"
    try:
        with warnings.catch_warnings():  # its note on a raw pickle's protocol names torch's internal file: noise
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        named = re.search(r"GLOBAL (\S+)", str(e))  # what torch's weights_only unpickler refused to import
        raise refused_pickle(path, "save the set with safetensors, or as an .npz of images and labels",
                             f"it names {named.group(1)}" if named else None) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ArtifactError(f"{path}: not a readable torch file ({e})") from e
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, (list, tuple)) or not data or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(torch.is_tensor(t) for t in p) for p in data):
        raise ArtifactError(f"{path}: expected the authors' res_*.pt layout, a dict whose 'data' is a list of "
                            f"[images, labels] tensor pairs")
    if not -len(data) <= entry < len(data):
        raise ParamsError(f"{path}: entry {entry} out of range; it holds {len(data)} [images, labels] pairs")
    images, labels = data[entry]
    return images.numpy(), labels.numpy(), f"res_*.pt entry {entry % len(data)} of {len(data)}"


def checked(images: np.ndarray, labels: np.ndarray, d: Data, pixels: str = "normalised",
            where: str = "set") -> tuple[torch.Tensor, torch.Tensor]:
    """The set as normalised float tensors on the data's device, or an ArtifactError saying what does not fit
    the prepared dataset (shape, classes, labels, normalisation): checked before any network trains."""
    if pixels not in PIXELS:
        raise ParamsError(f"unknown --pixels {pixels!r}; valid: {', '.join(PIXELS)}")
    want = f"{d.name} has {d.channels}x{d.im_size[0]}x{d.im_size[1]} images and labels 0..{d.num_classes - 1}"

    def bad(what: str) -> ArtifactError:
        return ArtifactError(f"{where}: {what}; {want}")

    if images.ndim != 4 or tuple(images.shape[1:]) != (d.channels, *d.im_size):
        raise bad(f"images of shape {tuple(images.shape)} (N, C, H, W)")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0:
        raise bad(f"{labels.dtype} labels of shape {tuple(labels.shape)} for {len(images)} images")
    if labels.min() < 0 or labels.max() >= d.num_classes:
        raise bad(f"labels {span(labels)}")
    absent = sorted(set(range(d.num_classes)) - set(labels.tolist()))
    if absent:
        raise bad(f"no image of class(es) {', '.join(map(str, absent))}")
    x = images.astype(np.float32)
    problem = non_finite_pixels(x)
    if problem:
        raise bad(problem)
    lo, hi = float(x.min()), float(x.max())
    if pixels == "normalised" and (hi > 20 or (lo >= 0 and hi <= 1)):
        # normalised images have negative values (the background lies below the mean); these look like raw pixels
        raise bad(f"pixel values {lo:.3g}..{hi:.3g} look unnormalised (0-1 or 0-255); pass --pixels unit or "
                  f"--pixels uint8 to have the dataset's mean/std applied")
    if pixels != "normalised":
        top = 255.0 if pixels == "uint8" else 1.0
        if lo < 0 or hi > top:
            raise bad(f"pixel values {lo:.3g}..{hi:.3g} are outside 0..{top:g} (--pixels {pixels})")
        mean = np.asarray(d.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(d.std, np.float32).reshape(1, -1, 1, 1)
        x = (x / top - mean) / std
    dev = d.x_train.device
    return torch.as_tensor(x, device=dev), torch.as_tensor(labels.astype(np.int64), device=dev)


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


def score(x: torch.Tensor, y: torch.Tensor, d: Data, cfg: ScoreConfig, seed: int, progress=None) -> dict:
    """Train cfg.models fresh networks on (x, y), and as many on random real images of the same size; test each
    final network once on the whole test set."""
    t0 = time.perf_counter()
    accs = train_models(cfg.model, cfg.models, x, y, d.x_test, d.y_test, d.num_classes, cfg.train,
                        derive_seed(seed, "set"), progress=progress)
    out = {"set": stats(accs), "accuracies": accs, "images": len(y),
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
    line = f"{s['mean']:.2f} ± {s['std']:.2f} % over {s['n']} models, 95% CI {ci}"
    if "gap_to_random" in result:
        line += f"; random real {result['random_real']['mean']:.2f} %, gap {result['gap_to_random']:+.2f} points"
    return line + f"; {result['wall_seconds']:.0f} s"
