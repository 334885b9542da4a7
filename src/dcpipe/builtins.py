"""The built-in methods behind the same door as a plug-in (dcpipe.plugin's signature; data: its RealData,
checkpoint: its Checkpoint or None): one function per kind, the entry's settings say which method. DC, its variants,
DSA and DM are settings of one condensation (their CondenseConfig, resolved by jobs.condense_job); the coresets are
settings of one selection."""

from __future__ import annotations

import torch

from .condense_config import CondenseConfig
from .coreset import SELECTORS
from .coreset_names import EVIDENCE
from .data import Data
from .dm import synthesise
from .errors import ArtifactError, ParamsError
from .io import read_npz


def as_data(data) -> Data:
    """The algorithms' Data of a method's RealData (the condensation reads no test images)."""
    empty = data.images[:0]
    return Data(data.dataset, data.images, data.labels, empty, data.labels[:0], data.classes, data.mean, data.std)


def condense(data, ipc: int, seed: int, device, settings: dict, progress, checkpoint):
    """Gradient matching (DC, DSA and the follow-up's variants) or distribution matching (DM): `settings` is the
    cell's whole CondenseConfig. The condensation checkpoints itself (its own fingerprint) at the door's path."""
    cfg = CondenseConfig(**settings)
    images, labels, losses, net_updates = synthesise(
        as_data(data), cfg, seed, checkpoint=checkpoint.path if checkpoint else None,
        progress=lambda it, loss: progress(it, cfg.iterations, loss))
    return images, labels, {"matching_loss": losses, "net_updates": net_updates}


def select(data, ipc: int, seed: int, device, settings: dict, progress, checkpoint):
    """A coreset of DC section 3.1: settings {"selector": random | herding | kcenter | forgetting, "evidence": the
    whole-set stage's features or counts file (herding, k-center, forgetting)}."""
    name = settings["selector"]
    kwargs = {}
    if name in EVIDENCE:
        path = settings.get("evidence")
        if not path:
            raise ParamsError(f"{name} selects from the whole-set stage's {EVIDENCE[name]}: pass --evidence")
        values = torch.as_tensor(read_npz(path, (EVIDENCE[name],))[EVIDENCE[name]])
        if len(values) != len(data.labels):
            raise ArtifactError(f"{path}: {len(values)} samples, the training set has {len(data.labels)}; "
                                "rerun the wholeset stage")
        kwargs[EVIDENCE[name]] = values
    idx = SELECTORS[name](data.labels.cpu(), ipc, data.classes, seed, **kwargs)
    labels = data.labels.cpu()[idx]
    return [idx[labels == c] for c in range(data.classes)]  # class-major already: the same order, split
