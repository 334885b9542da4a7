"""What the stages that read a prepared dataset share: their device, the dataset, and the training sets they read
(their start: stages.start)."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import data as data_mod
from ..runtime import pick_device
from ..sets import read_set
from ..jobs import Env


def device(env: Env):
    return pick_device(env.device)


def load_data(env: Env, prepared: Path, device) -> data_mod.Data:
    return data_mod.load(prepared, device, env.train_subset)


def training_set(artifact: Path, d: data_mod.Data) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a condensed set or a coreset artifact, on the data's device, after the one set check
    (dcpipe.sets.read_set): a set that does not fit the prepared dataset is refused before any model trains."""
    return tuple(read_set(artifact, d)[:2])

