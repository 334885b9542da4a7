"""The built-in coresets (DC section 3.1: random, herding, k-center, forgetting) behind the same door as a plug-in
(dcpipe.plugin's signature; data: its RealData): one function, the entry's settings say which selector."""

from __future__ import annotations

import torch

from .coreset import SELECTORS
from .coreset_names import EVIDENCE
from .errors import ArtifactError, ParamsError
from .io import read_npz


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
