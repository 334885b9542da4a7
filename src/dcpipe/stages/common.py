"""What the stages that read a prepared dataset share: their device, the dataset, and the training sets they read
(their start: stages.start)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import data as data_mod
from ..errors import ArtifactError
from ..io import read_npz
from ..runtime import pick_device
from ..set_checks import non_finite_pixels, span
from ..jobs import Env


def device(env: Env):
    return pick_device(env.device)


def load_data(env: Env, prepared: Path, device) -> data_mod.Data:
    return data_mod.load(prepared, device, env.train_subset)


def training_set(artifact: Path, d: data_mod.Data) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a condensed set or a coreset artifact, on the data's device.

    Checked against the prepared dataset before any model trains: a set of another dataset (or another kind of
    file) would otherwise train a model and fail at its test pass, or crash inside the loss on a label the
    network has no output for."""
    z = read_npz(artifact)
    dev = d.x_train.device

    def bad(what: str):
        return ArtifactError(f"{artifact}: {what}; the prepared {d.name} has {d.channels}x{d.im_size[0]}x"
                             f"{d.im_size[1]} images and labels 0..{d.num_classes - 1}: rerun the stage that wrote it")

    if "images" in z and "labels" in z:  # a condensed set
        x, y = z["images"], z["labels"]
        if x.ndim != 4 or tuple(x.shape[1:]) != (d.channels, *d.im_size) or not np.issubdtype(x.dtype, np.floating):
            raise bad(f"{x.dtype} images of shape {x.shape} (N, C, H, W)")
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or len(y) == 0:
            raise bad(f"{y.dtype} labels of shape {y.shape} for {len(x)} images")
        if y.min() < 0 or y.max() >= d.num_classes:
            raise bad(f"labels {span(y)}")
        problem = non_finite_pixels(x)
        if problem:
            raise bad(problem)
        return torch.as_tensor(x, device=dev), torch.as_tensor(y, device=dev)
    if "indices" in z:  # a coreset: indices of real training images (and their labels, as selected)
        idx = z["indices"]
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or len(idx) == 0:
            raise bad(f"{idx.dtype} indices of shape {idx.shape}")
        if idx.min() < 0 or idx.max() >= len(d.y_train):
            raise bad(f"indices {span(idx)} into {len(d.y_train)} training images")
        t = torch.as_tensor(idx, device=dev)
        if "labels" in z and not np.array_equal(z["labels"], d.y_train[t].cpu().numpy()):
            raise bad("labels that differ from the training images' at its indices (selected from another "
                      "prepared dataset or data.train_subset)")
        return d.x_train[t], d.y_train[t]
    raise ArtifactError(f"{artifact}: has arrays {', '.join(sorted(z)) or '(none)'}, expected images and labels "
                        f"(a condensed set) or indices (a coreset); rerun the stage that wrote it")
