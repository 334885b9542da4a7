"""What a condensation or selection method receives and returns: the one module a plug-in imports (docs/plugins.md).

Every method, built in (DC and its variants, DSA, DM, the four coresets) or brought by a user, is a function called
with these keyword arguments and nothing else:

    def synthesise(data: RealData, ipc: int, seed: int, device: torch.device, settings: dict,
                   progress: Progress, checkpoint: Checkpoint | None) -> tuple[images, labels]
    def select(data: RealData, ipc: int, seed: int, device: torch.device, settings: dict,
               progress: Progress, checkpoint: Checkpoint | None) -> list[indices of class c]

- synthetic (`kind: synthetic`): `images` (N, C, H, W), normalised like data.images, exactly `ipc` per class;
  `labels` either hard class indices (N,) or soft (N, classes), each row a distribution over the classes whose
  argmax is the image's class. An optional third item, {"matching_loss": [...]} (one value per iteration),
  becomes the set's loss curve.
- coreset (`kind: coreset`): indices into data.images, `ipc` of each class: a list of one index array per class
  (DeepCore's `select()` returns {"indices": ...}: that dict is taken too).

dcpipe calls the function inside the set's seed (torch, numpy and random seeded), checks what it returns before
anything is written (dcpipe.sets), and owns everything after: evaluation, cross-architecture, report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .errors import ArtifactError
from .io import write_safetensors
from .registry import ARGUMENTS, KINDS  # noqa: F401 (a plug-in reads the keywords here)



def synthetic(fn):
    """Marks an installed package's method (entry point of the group dcpipe.methods) as making synthetic images."""
    fn.dcpipe_kind = "synthetic"
    return fn


def coreset(fn):
    """Marks an installed package's method as selecting real training images."""
    fn.dcpipe_kind = "coreset"
    return fn


@dataclass(frozen=True)
class RealData:
    """The prepared real training set, as every method of a cell sees it (data.train_subset applied)."""
    dataset: str                  # e.g. "MNIST"
    images: torch.Tensor          # float32 (N, C, H, W), normalised by the dataset's mean/std, on `device`
    labels: torch.Tensor          # int64 (N,) class indices 0..classes-1
    classes: int
    channels: int
    im_size: tuple[int, int]
    mean: tuple[float, ...]       # per channel: pixel = image * std + mean, in [0, 1]
    std: tuple[float, ...]

    def indices_of(self, c: int) -> torch.Tensor:
        """Indices (into images) of the training images of class c."""
        return torch.nonzero(self.labels == c).flatten()


class Progress(Protocol):
    def __call__(self, step: int, total: int, value: float | None = None) -> None:
        """Step `step` (0-based) of `total` is done; `value` (a loss, say) is shown and logged."""


class Checkpoint:
    """Resume after a kill: save() a dict of tensors now and then, load() it back at the start (None when there is
    none). The file is written atomically and belongs to this set and these settings: one written with other
    settings or another seed is refused, not reused."""

    def __init__(self, path: str | Path, fingerprint: dict):
        self.path = Path(path)
        self._fingerprint = json.dumps(fingerprint, sort_keys=True, default=str)

    def save(self, state: dict[str, torch.Tensor]) -> None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        write_safetensors(self.path, tensors, metadata={"fingerprint": self._fingerprint})

    def load(self) -> dict[str, torch.Tensor] | None:
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), "pt") as f:
                meta = f.metadata() or {}
            state = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError) as e:
            raise ArtifactError(f"checkpoint {self.path} is unreadable ({e}); delete it to start afresh") from e
        if meta.get("fingerprint") != self._fingerprint:
            raise ArtifactError(f"checkpoint {self.path} was written with other settings; delete it to start afresh")
        return state

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
