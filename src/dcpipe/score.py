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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_safetensors

from .data import Data, sample_class
from .errors import ArtifactError, ParamsError
from .io import read_npz, refused_pickle
from .seeding import derive_seed, generator
from .sets import PIXELS, check_set
from .train import TrainConfig, train_models

FORMATS = (".npz", ".safetensors", ".pt", ".pth")


@dataclass(frozen=True)
class ScoreConfig:
    model: str = "ConvNet"
    models: int = 5
    train: TrainConfig = TrainConfig()
    random_baseline: bool = True


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
    """The set as normalised float tensors on the data's device, or the one set check's ArtifactError
    (dcpipe.sets.check_set), before any network trains."""
    return tuple(check_set(images, labels, d, where, pixels)[:2])


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
