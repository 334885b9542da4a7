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
from .train import TrainConfig, train_models

FORMATS = (".npz", ".safetensors", ".pt", ".pth")
# the dataset's mean/std already applied | floats in [0, 1] | 0-255 | ZCA-whitened: declared, to be refused
PIXELS = ("normalised", "unit", "uint8", "zca")
ZCA_REFUSED = ("ZCA-whitened sets (MTT's and DATM's CIFAR sets) are not supported: dcpipe evaluates in "
               "the dataset's mean/std space; distill with ZCA off (MTT: without --zca; DATM: zca: False)")
# MTT and DATM save their best set as two tensors in one run folder (DATM: its Normal/ subfolder)
TRAJECTORY_FILES = ("images_best.pt", "labels_best.pt")


@dataclass(frozen=True)
class ScoreConfig:
    model: str = "ConvNet"
    models: int = 5
    train: TrainConfig = TrainConfig()
    random_baseline: bool = True


@dataclass(frozen=True)
class LoadedSet:
    """A distilled set as its file holds it: images, class labels, soft labels ([N, classes] probabilities, each
    row's argmax its label; None where the set has hard labels only), and what was read."""
    images: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None
    source: str


def trajectory_folder(path: str | Path) -> Path | None:
    """The run folder of MTT's or DATM's saved set, where `path` is that folder or its images_best.pt."""
    path = Path(path)
    if path.is_dir():
        return path
    return path.parent if path.name == TRAJECTORY_FILES[0] else None


def load_set(path: str | Path, entry: int = -1) -> LoadedSet:
    """The distilled set a file (or MTT's/DATM's folder) holds. `entry`: which [images, labels] pair of a
    `res_*.pt` (the authors save one per experiment; DC-BENCH scores the last, as the default here)."""
    path = Path(path)
    folder = trajectory_folder(path)
    if folder is not None:
        return load_trajectory_set(folder)
    if path.suffix not in FORMATS:
        raise ParamsError(f"{path}: unknown set format {path.suffix or '(none)'!r}; valid: {', '.join(FORMATS)}, or "
                          f"MTT's/DATM's folder of {' and '.join(TRAJECTORY_FILES)}")
    if not path.is_file():
        raise ParamsError(f"{path}: no such file")
    if path.suffix == ".npz":
        z = read_npz(path, ("images", "labels"))
        return LoadedSet(z["images"], z["labels"], z.get("soft_labels"), "npz")
    if path.suffix == ".safetensors":
        try:
            t = load_safetensors(str(path))
        except (SafetensorError, OSError) as e:
            raise ArtifactError(f"{path}: not a readable safetensors file ({e})") from e
        if not {"images", "labels"} <= set(t):
            raise ArtifactError(f"{path}: has tensors {', '.join(sorted(t)) or '(none)'}, expected images and labels")
        return LoadedSet(t["images"], t["labels"], t.get("soft_labels"), "safetensors")
    obj = torch_load(path, "save the set with safetensors, or as an .npz of images and labels")
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, (list, tuple)) or not data or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(torch.is_tensor(t) for t in p) for p in data):
        raise ArtifactError(f"{path}: expected the authors' res_*.pt layout, a dict whose 'data' is a list of "
                            f"[images, labels] tensor pairs")
    if not -len(data) <= entry < len(data):
        raise ParamsError(f"{path}: entry {entry} out of range; it holds {len(data)} [images, labels] pairs")
    images, labels = data[entry]
    return LoadedSet(as_array(images), as_array(labels), None, f"res_*.pt entry {entry % len(data)} of {len(data)}")


def load_trajectory_set(folder: Path) -> LoadedSet:
    """MTT's or DATM's images_best.pt ([N, C, H, W]) and labels_best.pt: MTT's class indices [N], or DATM's
    learned soft labels [N, classes], logits that its evaluation softmaxes (its SoftCrossEntropy), as here."""
    images, labels = (torch_load(folder / name, "save the tensors alone (torch.save(t.detach().cpu(), ...))")
                      for name in TRAJECTORY_FILES)
    for name, t in zip(TRAJECTORY_FILES, (images, labels)):
        if not torch.is_tensor(t):
            raise ArtifactError(f"{folder / name}: holds a {type(t).__name__}, expected one tensor (MTT's/DATM's "
                                f"{name})")
    if labels.ndim == 1 and not labels.is_floating_point():
        return LoadedSet(as_array(images), as_array(labels), None, "MTT/DATM images_best.pt, labels_best.pt")
    if labels.ndim == 2 and labels.is_floating_point():
        soft = torch.softmax(labels.detach().double(), 1).float()
        return LoadedSet(as_array(images), soft.argmax(1).numpy(), soft.numpy(),
                         "MTT/DATM images_best.pt, labels_best.pt (DATM's soft-label logits, softmaxed)")
    raise ArtifactError(f"{folder / TRAJECTORY_FILES[1]}: {labels.dtype} labels of shape {tuple(labels.shape)}; "
                        f"expected class indices [N] (MTT) or soft-label logits [N, classes] (DATM)")


def torch_load(path: Path, fix: str):
    """A torch file's tensors (and plain containers), never its code: a file that names anything else is refused."""
    if not path.is_file():
        raise ParamsError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # its note on a raw pickle's protocol names torch's internal file: noise
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        named = re.search(r"GLOBAL (\S+)", str(e))  # what torch's weights_only unpickler refused to import
        raise refused_pickle(path, fix, f"it names {named.group(1)}" if named else None) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ArtifactError(f"{path}: not a readable torch file ({e})") from e


def as_array(t: torch.Tensor) -> np.ndarray:
    """A saved tensor as numpy: detached (MTT and DATM save their optimised leaf tensors), floats as float32."""
    t = t.detach()
    return (t.float() if t.is_floating_point() else t).numpy()


def span(values: np.ndarray) -> str:
    """The range of integer values as `min..max` (-1..8 reads clearly where -1-8 does not)."""
    return f"{int(values.min())}..{int(values.max())}"


def non_finite_pixels(images: np.ndarray) -> str | None:
    """What makes a set's images untrainable: NaN or inf pixels (a set saved from a diverged run), None when every
    value is finite. Every reader of a set checks this before any network trains on it (score, and the stages'
    training_set): a model trained on NaN scores chance, which would be recorded as a result."""
    bad = ~np.isfinite(images)
    if not bad.any():
        return None
    n, nan = int(bad.sum()), int(np.isnan(images).sum())
    return f"{n} of {images.size} pixel values are not finite ({nan} nan, {n - nan} inf)"


def soft_label_problem(soft: np.ndarray, labels: np.ndarray, num_classes: int) -> str | None:
    """What makes soft labels unusable for training: not [N, classes] floats, not probabilities (negative, or rows
    not summing to 1 within 1e-4: logits are refused, not guessed at), or a label that is not its row's argmax.
    None when they are fine."""
    if soft.shape != (len(labels), num_classes) or not np.issubdtype(soft.dtype, np.floating):
        return f"{soft.dtype} soft labels of shape {tuple(soft.shape)} for {len(labels)} images"
    p = soft.astype(np.float64)
    if not np.isfinite(p).all() or p.min() < 0:
        return f"soft labels {p.min():.3g}..{p.max():.3g} are not probabilities (finite, non-negative)"
    sums = p.sum(1)
    if np.abs(sums - 1).max() > 1e-4:
        return (f"soft-label rows sum to {sums.min():.6g}..{sums.max():.6g}, not 1: soft labels are probabilities "
                f"(softmax logits first)")
    off = int((p[np.arange(len(labels)), labels] < p.max(1)).sum())
    if off:
        return f"{off} labels are not the argmax of their soft-label rows"
    return None


def checked(images: np.ndarray, labels: np.ndarray, d: Data, pixels: str = "normalised", where: str = "set",
            soft: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The set as normalised float tensors on the data's device (images, labels, soft labels or None), or an
    ArtifactError saying what does not fit the prepared dataset (shape, classes, labels, soft labels,
    normalisation): checked before any network trains."""
    if pixels == "zca":
        raise ParamsError(f"{where}: pixels zca: {ZCA_REFUSED}")
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
    problem = None if soft is None else soft_label_problem(soft, labels, d.num_classes)
    if problem:
        raise bad(problem)
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
    return (torch.as_tensor(x, device=dev), torch.as_tensor(labels.astype(np.int64), device=dev),
            None if soft is None else torch.as_tensor(soft.astype(np.float32), device=dev))


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
