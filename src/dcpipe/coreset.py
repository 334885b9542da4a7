"""Coreset selection: pick `ipc` real training images per class. Every method shares one signature:
select(labels, ipc, num_classes, seed, **evidence) -> indices (class-major, ipc per class), where the evidence is
what the method looks at: nothing (random), features of a model trained on the whole set (herding, k-center),
or per-sample forgetting counts (forgetting). DC paper section 3.1 "Baselines"."""

from __future__ import annotations

import math

import torch

from .precision import autocast
from .seeding import derive_seed, generator


def _class_members(labels: torch.Tensor, c: int, ipc: int) -> torch.Tensor:
    idx = torch.nonzero(labels.cpu() == c).flatten()
    if len(idx) < ipc:
        raise ValueError(f"class {c} has {len(idx)} images, fewer than IPC {ipc}")
    return idx


def random_select(labels: torch.Tensor, ipc: int, num_classes: int, seed: int) -> torch.Tensor:
    """ipc distinct random images of each class (the DC paper's "Random" baseline)."""
    out = []
    for c in range(num_classes):
        idx = _class_members(labels, c, ipc)
        g = generator(derive_seed(seed, "random", c))
        out.append(idx[torch.randperm(len(idx), generator=g)[:ipc]])
    return torch.cat(out)


def herding_order(f: torch.Tensor, k: int) -> list[int]:
    """Greedy herding (Welling 2009, as in iCaRL / E2E): the k-th pick makes the running mean of the picks
    closest to the class mean, so the first pick is the sample nearest the mean."""
    mu = f.mean(0)
    picked, total = [], torch.zeros_like(mu)
    free = torch.ones(len(f), dtype=torch.bool)
    for n in range(1, k + 1):
        dist = ((mu - (total + f) / n) ** 2).sum(1)
        dist[~free] = float("inf")
        j = int(dist.argmin())
        picked.append(j)
        free[j] = False
        total += f[j]
    return picked


def kcenter_order(f: torch.Tensor, k: int) -> list[int]:
    """Greedy k-center (Sener & Savarese 2018): start at the sample nearest the class centre, then repeatedly take
    the sample farthest from its nearest chosen centre (l2 in feature space)."""
    first = int(((f - f.mean(0)) ** 2).sum(1).argmin())
    picked = [first]
    nearest = ((f - f[first]) ** 2).sum(1)
    for _ in range(k - 1):
        j = int(nearest.argmax())
        picked.append(j)
        nearest = torch.minimum(nearest, ((f - f[j]) ** 2).sum(1))
    return picked


def _by_feature_order(order, labels, ipc, num_classes, features: torch.Tensor) -> torch.Tensor:
    """Apply a greedy feature-space order within each class (deterministic: the seed is not needed)."""
    out = []
    for c in range(num_classes):
        idx = _class_members(labels, c, ipc)
        out.append(idx[order(features[idx].double().cpu(), ipc)])
    return torch.cat(out)


def herding_select(labels, ipc, num_classes, seed, features: torch.Tensor) -> torch.Tensor:
    return _by_feature_order(herding_order, labels, ipc, num_classes, features)


def kcenter_select(labels, ipc, num_classes, seed, features: torch.Tensor) -> torch.Tensor:
    return _by_feature_order(kcenter_order, labels, ipc, num_classes, features)


def forgetting_counts(correct: torch.Tensor) -> torch.Tensor:
    """Forgetting events (Toneva et al. 2019) from a (presentations, samples) trace of whether each sample was
    classified correctly: a sample is forgotten when it goes from correct to wrong at its next presentation.
    A sample never classified correctly counts as forgotten infinitely often, as in Toneva et al."""
    correct = correct.bool()
    events = (correct[:-1] & ~correct[1:]).sum(0).double()
    events[~correct.any(0)] = float("inf")
    return events


def forgetting_select(labels, ipc, num_classes, seed, counts: torch.Tensor) -> torch.Tensor:
    """The most forgotten samples of each class ("easy to forget", DC paper); ties broken at random by seed."""
    out = []
    for c in range(num_classes):
        idx = _class_members(labels, c, ipc)
        g = generator(derive_seed(seed, "forgetting", c))
        shuffled = idx[torch.randperm(len(idx), generator=g)]
        order = torch.argsort(counts.cpu()[shuffled], descending=True, stable=True)
        out.append(shuffled[order[:ipc]])
    return torch.cat(out)


# One per name of coreset_names.CORESETS, in its order (the evidence each takes: coreset_names.EVIDENCE).
SELECTORS = {"random": random_select, "herding": herding_select, "kcenter": kcenter_select,
             "forgetting": forgetting_select}


class CorrectnessTrace:
    """train_model's `observe` hook: records, for every training sample, whether its training-time prediction
    was right at each presentation (one row per epoch: every sample is presented once per epoch). With
    augmentation the presentation is the augmented image, as in Toneva et al.'s CIFAR runs."""

    def __init__(self, labels: torch.Tensor, on_epoch=None):
        self.labels, self.on_epoch = labels, on_epoch
        self.rows: list[torch.Tensor] = []
        self.filled = 0

    def __call__(self, idx: torch.Tensor, logits: torch.Tensor) -> None:
        if self.filled == 0:
            self.rows.append(torch.zeros(len(self.labels), dtype=torch.bool))
        self.rows[-1][idx.cpu()] = (logits.argmax(1) == self.labels[idx]).cpu()
        self.filled = (self.filled + len(idx)) % len(self.labels)
        if self.filled == 0 and self.on_epoch:
            self.on_epoch(len(self.rows), float(self.rows[-1].double().mean()))

    def trace(self) -> torch.Tensor:
        """(epochs, samples) bool: the input of forgetting_counts."""
        return torch.stack(self.rows)


@torch.no_grad()
def penultimate_features(net: torch.nn.Module, x: torch.Tensor, batch: int = 1000,
                         precision: str = "fp32") -> torch.Tensor:
    """The input of the network's last linear layer (ConvNet: the 2048-d flattened feature map) for every image:
    the feature space in which herding and k-center measure l2 distances (DC paper section 3.1)."""
    last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    out = []
    hook = last.register_forward_hook(lambda mod, inp, _: out.append(inp[0].float().cpu()))
    try:
        net.eval()
        with autocast(x.device, precision):
            for i in range(0, len(x), batch):
                net(x[i:i + batch])
    finally:
        hook.remove()
    return torch.cat(out)


def rank_coresets(scores: list[float], fractions=(1.0, 0.1, 0.01)) -> list[dict]:
    """Optimal random selection (DC appendix C, Table T12): N random coresets ranked by their score; for each
    fraction, the mean and std of the best ceil(fraction * N) scores ("Top 1000 / 100 / 10" of N = 1000)."""
    ranked = sorted(scores, reverse=True)
    out = []
    for f in fractions:
        top = torch.tensor(ranked[:max(1, math.ceil(f * len(ranked)))], dtype=torch.float64)
        out.append({"fraction": f, "n": len(top), "mean": float(top.mean()), "std": float(top.std(unbiased=False))})
    return out
