"""One check of a set of training images, for every reader of one: evaluate, evaluate_cross, continual's memory,
the NAS proxies, `dcpipe score` and a plug-in's output (dcpipe.door). A set that does not fit its prepared dataset
(shape, channels, classes, labels, soft-label rows, pixel scale, finite values, and where asked the count per
class) is refused with one line before any network trains on it, and nothing is written from it."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .data import Data
from .errors import ArtifactError, ParamsError
from .io import read_npz
from .score_config import PIXELS, ZCA_REFUSED

SOFT_TOLERANCE = 1e-4  # a soft-label row sums to 1 within float32 rounding of a softmax over 100 classes
# What a stage that reads its own upstream artifact advises: the artifact is the pipeline's, so rebuild it.
RERUN = ": rerun the stage that wrote it"


class TrainingSet(NamedTuple):
    images: torch.Tensor         # normalised float32 (N, C, H, W), on the data's device
    labels: torch.Tensor         # int64 (N,): each image's class (the argmax of its soft row where there is one)
    soft: torch.Tensor | None    # float32 (N, classes) soft labels, rows summing to 1; None for hard-label sets


def span(values: np.ndarray) -> str:
    """The range of integer values as `min..max` (-1..8 reads clearly where -1-8 does not)."""
    return f"{int(values.min())}..{int(values.max())}"


def non_finite_pixels(images: np.ndarray) -> str | None:
    """NaN or inf pixels (a set saved from a diverged run) in words, None when every value is finite: a model
    trained on NaN scores chance, which would be recorded as a result."""
    bad = ~np.isfinite(images)
    if not bad.any():
        return None
    n, nan = int(bad.sum()), int(np.isnan(images).sum())
    return f"{n} of {images.size} pixel values are not finite ({nan} nan, {n - nan} inf)"


def per_class(labels: np.ndarray, classes: int) -> list[int]:
    return np.bincount(labels, minlength=classes).tolist()


def _refusal(d: Data, where: str, fix: str):
    """The refusal of one set: what is wrong, then what the prepared dataset holds, then the fix."""
    want = f"the prepared {d.name} has {d.channels}x{d.im_size[0]}x{d.im_size[1]} images and labels 0..{d.num_classes - 1}"
    return lambda what: ArtifactError(f"{where}: {what}; {want}{fix}")


def check_set(images, labels, d: Data, where: str, pixels: str = "normalised", ipc: int | None = None,
              soft=None, fix: str = "") -> TrainingSet:
    """The set as normalised tensors on the data's device, or an ArtifactError `<where>: <what>; the prepared
    <dataset> has CxHxW images and labels 0..K-1<fix>`. `ipc`: each class must hold exactly that many images."""
    images, labels = np.asarray(images), np.asarray(labels)
    if pixels == "zca":
        raise ParamsError(f"{where}: pixels zca: {ZCA_REFUSED}")
    if pixels not in PIXELS:
        raise ParamsError(f"unknown pixels {pixels!r}; valid: {', '.join(PIXELS)}")
    bad = _refusal(d, where, fix)

    if images.ndim != 4 or tuple(images.shape[1:]) != (d.channels, *d.im_size) or not (
            np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
        raise bad(f"{images.dtype} images of shape {tuple(images.shape)} (N, C, H, W)")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0:
        raise bad(f"{labels.dtype} labels of shape {tuple(labels.shape)} for {len(images)} images")
    if labels.min() < 0 or labels.max() >= d.num_classes:
        raise bad(f"labels {span(labels)}")
    counts = per_class(labels, d.num_classes)
    absent = [c for c, n in enumerate(counts) if n == 0]
    if absent:
        raise bad(f"no image of class(es) {', '.join(map(str, absent))}")
    if ipc is not None and set(counts) != {ipc}:
        raise bad(f"images per class {counts}, expected {ipc} of each class (IPC {ipc})")
    if soft is not None:
        soft = _checked_soft(np.asarray(soft), labels, d.num_classes, bad)
    x = images.astype(np.float32)
    problem = non_finite_pixels(x)
    if problem:
        raise bad(problem)
    lo, hi = float(x.min()), float(x.max())
    if pixels == "normalised" and (hi > 20 or (lo >= 0 and hi <= 1)):
        # normalised images have negative values (the background lies below the mean); these look like raw pixels
        raise bad(f"pixel values {lo:.3g}..{hi:.3g} look unnormalised (0-1 or 0-255); declare its pixels "
                  f"as unit or uint8 to have the dataset's mean/std applied")
    if pixels != "normalised":
        top = 255.0 if pixels == "uint8" else 1.0
        if lo < 0 or hi > top:
            raise bad(f"pixel values {lo:.3g}..{hi:.3g} are outside 0..{top:g} (pixels: {pixels})")
        mean = np.asarray(d.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(d.std, np.float32).reshape(1, -1, 1, 1)
        x = (x / top - mean) / std
    dev = d.x_train.device
    return TrainingSet(torch.as_tensor(x, device=dev), torch.as_tensor(labels.astype(np.int64), device=dev),
                       None if soft is None else torch.as_tensor(soft, device=dev))


def _checked_soft(soft: np.ndarray, labels: np.ndarray, classes: int, bad) -> np.ndarray:
    """Soft labels: one finite, non-negative row per image over the classes, summing to 1, whose argmax is the
    image's class (so that the per-class counts and the hard-label score read the same classes)."""
    if soft.shape != (len(labels), classes) or not np.issubdtype(soft.dtype, np.floating):
        raise bad(f"{soft.dtype} soft labels of shape {tuple(soft.shape)}, expected ({len(labels)}, {classes}): one "
                  f"row per image over the classes")
    soft = soft.astype(np.float32)
    if not np.isfinite(soft).all() or soft.min() < 0:
        raise bad(f"soft labels with negative or non-finite values (min {float(np.nanmin(soft)):.3g}); each row "
                  f"must be a distribution over the classes (apply a softmax to logits)")
    sums = soft.sum(axis=1)
    off = np.abs(sums - 1) > SOFT_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        raise bad(f"{int(off.sum())} soft-label rows do not sum to 1 (row {i} sums to {float(sums[i]):.4g}); "
                  f"apply a softmax to logits")
    if not np.array_equal(soft.argmax(axis=1), labels):
        raise bad("labels that are not the argmax of their soft-label rows")
    return soft


def check_indices(indices, d: Data, where: str, ipc: int | None = None, labels=None, fix: str = "") -> torch.Tensor:
    """A coreset's indices into the prepared training set (as a tensor on the data's device), or an ArtifactError:
    integers in range, no repeats, every class present, `ipc` of each class where given, and (`labels`, as the
    selection recorded them) the training images' own labels."""
    idx = np.asarray(indices)
    bad = _refusal(d, where, fix)

    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or len(idx) == 0:
        raise bad(f"{idx.dtype} indices of shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= len(d.y_train):
        raise bad(f"indices {span(idx)} into {len(d.y_train)} training images")
    if len(np.unique(idx)) != len(idx):
        raise bad(f"{len(idx) - len(np.unique(idx))} repeated indices (a coreset picks each training image once)")
    t = torch.as_tensor(idx, device=d.x_train.device)
    own = d.y_train[t].cpu().numpy()
    if labels is not None and not np.array_equal(np.asarray(labels), own):
        raise bad("labels that differ from the training images' at its indices (selected from another prepared "
                  "dataset or data.train_subset)")
    counts = per_class(own, d.num_classes)
    if (ipc is not None and set(counts) != {ipc}) or 0 in counts:
        raise bad(f"images per class {counts}, expected {ipc or 'at least 1'} of each of the {d.num_classes} classes")
    return t


def read_set(artifact, d: Data) -> TrainingSet:
    """A condensed set (images, labels, optional soft_labels) or a coreset (indices into the prepared training
    set) as the pipeline wrote it, checked against the prepared dataset before any model trains."""
    z = read_npz(artifact)
    if "images" in z and "labels" in z:
        return check_set(z["images"], z["labels"], d, str(artifact), soft=z.get("soft_labels"), fix=RERUN)
    if "indices" in z:
        t = check_indices(z["indices"], d, str(artifact), labels=z.get("labels"), fix=RERUN)
        return TrainingSet(d.x_train[t], d.y_train[t], None)
    raise ArtifactError(f"{artifact}: has arrays {', '.join(sorted(z)) or '(none)'}, expected images and labels "
                        f"(a condensed set) or indices (a coreset){RERUN}")
