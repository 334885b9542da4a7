"""Coreset selection: pick `ipc` real training images per class. Every method shares one signature:
select(labels, ipc, num_classes, seed, **features) -> indices (class-major, ipc per class)."""

from __future__ import annotations

import torch

from .seeding import derive_seed, generator


def random_select(labels: torch.Tensor, ipc: int, num_classes: int, seed: int) -> torch.Tensor:
    """ipc distinct random images of each class (the DC paper's "Random" baseline)."""
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(labels.cpu() == c).flatten()
        if len(idx) < ipc:
            raise ValueError(f"class {c} has {len(idx)} images, fewer than IPC {ipc}")
        g = generator(derive_seed(seed, "random", c))
        out.append(idx[torch.randperm(len(idx), generator=g)[:ipc]])
    return torch.cat(out)


SELECTORS = {"random": random_select}
