"""The one training loop: train fresh networks on a (small) labelled set and test them on the whole test set.

Protocol (DC paper section 3 / appendix A): SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, the
learning rate x0.1 half-way; MNIST adds the crop/scale/rotate augmentation. The lr drop uses a scheduler that
keeps the momentum buffer (the follow-up paper's code calls the reference's optimiser re-creation a bug).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from . import dsa
from .models import build_model, has_batchnorm
from .precision import autocast
from .seeding import derive_seed, generator, torch_seeded
from .train_config import TrainConfig

log = logging.getLogger(__name__)


def augmented(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """A training mini-batch as the protocol augments it: DSA, crop/scale/rotate, or not at all."""
    if cfg.dsa:
        return dsa.augment(x, cfg.dsa, gen)
    return augment_crop_scale_rotate(x, gen) if cfg.augment else x


def schedule(cfg: TrainConfig, n: int) -> tuple[int, int, int]:
    """(epochs, step of the x0.1 lr drop, total SGD steps) of training on n images."""
    per_epoch = math.ceil(n / cfg.batch)
    if cfg.steps is None:
        return cfg.epochs, (cfg.epochs // 2) * per_epoch, cfg.epochs * per_epoch
    return math.ceil(cfg.steps / per_epoch), cfg.steps // 2, cfg.steps


def augment_crop_scale_rotate(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image gets one of: shift by -4..3 px (crop after 4-px padding), independent x/y scaling in [0.8, 1.2],
    or rotation by -45..45 degrees. One batched affine warp instead of the reference's per-image Python loop;
    bilinear sampling with zero padding (= the dataset mean after normalisation) replaces its nearest/spline
    interpolation and batch-mean padding."""
    return warp(x, crop_scale_rotate_theta(x.shape[0], x.shape[-2:], gen).to(x.device))


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """x warped by the affine matrices theta (one per image), bilinear, zero padding."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def crop_scale_rotate_theta(n: int, size, gen: torch.Generator) -> torch.Tensor:
    """The (n, 2, 3) affine matrices of augment_crop_scale_rotate, on the generator's device (the CPU's for every
    training generator): a few dozen scalars, built where they are drawn and moved once, with torch.where rather
    than boolean-mask writes. On a GPU each mask write and each small copy waits for the device, and MNIST's
    evaluation builds these once per model and step (20 models x 1000 steps per set)."""
    h, w = size
    u = lambda *s: torch.rand(*s, generator=gen, device=gen.device)  # noqa: E731
    op = (u(n) * 3).long()
    shift = torch.floor(u(n, 2) * 8) - 4  # pixels
    s = 0.8 + 0.4 * u(n, 2)
    a = (u(n) * 90 - 45) * math.pi / 180
    crop, scale, rot = op == 0, op == 1, op == 2
    zero, one = torch.zeros(n, device=gen.device), torch.ones(n, device=gen.device)
    cos, sin = torch.cos(a), torch.sin(a)
    return torch.stack([torch.where(scale, 1 / s[:, 0], torch.where(rot, cos, one)),
                        torch.where(rot, -sin, zero),
                        torch.where(crop, -shift[:, 0] * 2 / w, zero),
                        torch.where(rot, sin, zero),
                        torch.where(scale, 1 / s[:, 1], torch.where(rot, cos, one)),
                        torch.where(crop, -shift[:, 1] * 2 / h, zero)], 1).view(n, 2, 3)


def train_model(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
                gen: torch.Generator, observe=None) -> torch.nn.Module:
    """Train `net` in place on (x, y) for cfg.epochs epochs of shuffled mini-batches. `y`: class indices [N], or
    class probabilities [N, C] (soft labels), which F.cross_entropy takes as the soft-target cross-entropy
    -sum p log softmax; shuffles and augmentations depend on the images alone, so they are the same either way.
    `observe(idx, logits)`, if given, sees each mini-batch's indices and (detached) training logits: how the
    whole-set stage records when each sample is classified correctly (forgetting events) without a second pass."""
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    epochs, drop, total = schedule(cfg, len(y))
    net.train()
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen, device=gen.device).to(x.device)
        for i in range(0, len(y), cfg.batch):
            if step == total:
                break
            if step == drop:  # as MultiStepLR(milestones=[epochs // 2], gamma=0.1), which keeps the momentum
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * 0.1
            step += 1
            idx = perm[i:i + cfg.batch]
            xb = augmented(x[idx], cfg, gen)
            with autocast(x.device, cfg.train_precision):
                logits = net(xb)
                loss = F.cross_entropy(logits, y[idx])
            if observe is not None:
                observe(idx, logits.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net


@torch.no_grad()
def test_accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000,
                  precision: str = "fp32") -> float:
    net.eval()
    with autocast(x.device, precision):
        correct = sum((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(y), batch))
    return correct / len(y)


def trained_model(model: str, index: int, x, y, num_classes: int, cfg: TrainConfig, seed: int,
                  observe=None) -> torch.nn.Module:
    """Model `index` of a group: initialised and shuffled from derive_seed(seed, "model", index) alone."""
    s = derive_seed(seed, "model", index)
    with torch_seeded(s):
        net = build_model(model, x.shape[1], num_classes, tuple(x.shape[2:])).to(x.device)
    return train_model(net, x, y, cfg, generator(derive_seed(s, "batches"), "cpu"), observe)


def train_models(model: str, n_models: int, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor,
                 y_test: torch.Tensor, num_classes: int, cfg: TrainConfig, seed: int,
                 progress=None, done: list[float] | None = None, soft: torch.Tensor | None = None) -> list[float]:
    """Train n_models fresh networks of one architecture on (x, y); return each one's test accuracy.

    Model i is initialised and shuffled from derive_seed(seed, i) alone, so results do not depend on how the
    models are grouped (one by one, or a batch of models), and a resumed group skips the models in `done`.
    `soft` (float [N, num_classes], rows summing to 1): train on these soft labels instead of y, with the same
    initialisations, shuffles and augmentations as on y.
    """
    targets = training_targets(y, soft, num_classes)
    accs = list(done or [])
    for i in range(len(accs), n_models):
        net = trained_model(model, i, x, targets, num_classes, cfg, seed)
        accs.append(test_accuracy(net, x_test, y_test, cfg.test_batch, cfg.test_precision))
        if progress:
            progress(i, accs[-1])
    return accs


def training_targets(y: torch.Tensor, soft: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """What the loss is taken against: the labels y, or the soft labels where given (the hard labels' tensor
    itself, so hard-label training runs exactly as it does without soft labels)."""
    if soft is None:
        return y
    if soft.shape != (len(y), num_classes) or not soft.is_floating_point():
        raise ValueError(f"soft labels: {soft.dtype} of shape {tuple(soft.shape)}, expected float "
                         f"({len(y)}, {num_classes})")
    return soft


def compare_test_precision(model: str, n_models: int, x, y, x_test, y_test, num_classes: int, cfg: TrainConfig,
                           seed: int) -> dict:
    """Train n_models once, then test each in fp32 and in bf16 autocast: the accuracy check behind the
    `evaluate.test_precision: bf16` switch (same networks, so any difference is the precision's alone)."""
    rows = []
    for i in range(n_models):
        net = trained_model(model, i, x, y, num_classes, cfg, seed)
        row = {}
        for precision in ("fp32", "bf16"):
            t0 = time.perf_counter()
            row[precision] = test_accuracy(net, x_test, y_test, cfg.test_batch, precision)
            row[f"{precision}_seconds"] = time.perf_counter() - t0
        rows.append(row)
    diffs = [abs(r["fp32"] - r["bf16"]) * 100 for r in rows]
    return {"models": rows, "max_abs_diff_points": max(diffs), "mean_abs_diff_points": sum(diffs) / len(diffs),
            "speedup": sum(r["fp32_seconds"] for r in rows) / sum(r["bf16_seconds"] for r in rows)}


def compare_train_precision(model: str, n_models: int, x, y, x_test, y_test, num_classes: int, cfg: TrainConfig,
                            seed: int) -> dict:
    """Train the same n_models (same seeds, batches, initialisations) once in fp32 and once under bf16 autocast,
    and test all of them alike: the accuracy check behind `train_precision: bf16`. The difference of the means
    is the precision's effect plus whatever rounding does to each trajectory, so compare it with the spread."""
    out = {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        accs = train_models(model, n_models, x, y, x_test, y_test, num_classes,
                            replace(cfg, train_precision=precision), seed)
        t = torch.tensor(accs, dtype=torch.float64) * 100
        out[precision] = {"accuracies": accs, "mean": t.mean().item(),
                          "std": t.std().item() if n_models > 1 else 0.0, "seconds": time.perf_counter() - t0}
    out["mean_difference_points"] = out["bf16"]["mean"] - out["fp32"]["mean"]
    out["speedup"] = out["fp32"]["seconds"] / out["bf16"]["seconds"]
    return out


def train_models_batched(model: str, n_models: int, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor,
                         y_test: torch.Tensor, num_classes: int, cfg: TrainConfig, seed: int,
                         first: int = 0, soft: torch.Tensor | None = None) -> list[float]:
    """train_models for a batch of models at once: parameters stacked along a leading model axis and one
    vmap(grad(functional_call)) per step, so M small networks become one wide computation (the batched
    evaluation). Model i sees exactly the initialisation, shuffles and augmentations of train_models'
    model i; SGD with momentum and weight decay is applied as torch.optim.SGD does. Not for networks with
    BatchNorm, whose running statistics are in-place buffer updates that vmap does not batch. `first`: the
    index of the first model (a resumed group trains models first..first+n_models-1); `soft`: as train_models."""
    params, buffers, base = train_stacked(model, n_models, x, training_targets(y, soft, num_classes), num_classes,
                                          cfg, seed, first)
    return stacked_accuracies(params, buffers, base, x_test, y_test, cfg)


def stacked_accuracies(params, buffers, base, x_test, y_test, cfg: TrainConfig) -> list[float]:
    """Test accuracy of each model of a stack trained by train_stacked."""
    n_models = next(iter(params.values())).shape[0]
    forward = vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)), in_dims=(0, 0, None))
    correct = torch.zeros(n_models, dtype=torch.long, device=x_test.device)
    with torch.no_grad(), autocast(x_test.device, cfg.test_precision):
        for i in range(0, len(y_test), cfg.test_batch):
            logits = forward(params, buffers, x_test[i:i + cfg.test_batch])
            correct += (logits.argmax(-1) == y_test[i:i + cfg.test_batch]).sum(1)
    return [c / len(y_test) for c in correct.tolist()]


def train_stacked(model: str, n_models: int, x, y, num_classes: int, cfg: TrainConfig, seed: int, first: int = 0):
    """Train the stack; returns (stacked parameters, stacked buffers, the module whose structure they fill).
    `y`: class indices [N] or class probabilities [N, C], as train_model."""
    nets, gens = [], []
    for i in range(first, first + n_models):
        s = derive_seed(seed, "model", i)
        with torch_seeded(s):
            nets.append(build_model(model, x.shape[1], num_classes, tuple(x.shape[2:])).to(x.device))
        gens.append(generator(derive_seed(s, "batches"), "cpu"))
    if has_batchnorm(nets[0]):
        raise ValueError(f"{model}: batched training does not support BatchNorm; use train_models")
    params, buffers = stack_module_state(nets)
    base = nets[0]

    def loss(p, b, xb, yb):
        with autocast(xb.device, cfg.train_precision):
            return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    grads_of = vmap(grad(loss))
    momentum = {k: torch.zeros_like(v) for k, v in params.items()}
    lr = cfg.lr
    epochs, drop, total = schedule(cfg, len(y))
    step = 0
    base.train()
    for _ in range(epochs):
        perms = torch.stack([torch.randperm(len(y), generator=g, device=g.device) for g in gens]).to(x.device)
        for i in range(0, len(y), cfg.batch):
            if step == total:
                break
            if step == drop:
                lr = cfg.lr * 0.1  # MultiStepLR(milestones=[epochs // 2], gamma=0.1), as train_model
            step += 1
            idx = perms[:, i:i + cfg.batch]
            xb = x[idx]
            if cfg.dsa:
                xb = torch.stack([augmented(xb[m], cfg, gens[m]) for m in range(n_models)])
            elif cfg.augment:  # every model's matrices from its own generator, then one warp for the stack
                theta = torch.cat([crop_scale_rotate_theta(xb.shape[1], xb.shape[-2:], g) for g in gens])
                xb = warp(xb.flatten(0, 1), theta.to(xb.device)).view_as(xb)
            grads = grads_of(params, buffers, xb, y[idx])
            with torch.no_grad():
                for k, p in params.items():
                    d_p = grads[k] + cfg.weight_decay * p
                    momentum[k].mul_(cfg.momentum).add_(d_p)
                    p.sub_(lr * momentum[k])
    base.eval()
    return params, buffers, base
