"""Dataset condensation with gradient matching: Algorithm 1 of the DC paper, top to bottom, with the options of
the follow-up paper (Jiang et al.: multi-level loss, angle + magnitude distances, overfitting-aware and adaptive
inner steps) as settings of the same loop.

for each of K outer iterations:                    (a fresh randomly initialised network each time)
    for t in 0..T-1:                               (T = outer_loop of the IPC schedule)
        freeze BatchNorm statistics estimated on real data
        per class c: g_S^c = grad L(S_c), g_T^c = grad L(T_c)
        loss = sum_c D(g_S^c, g_T^c)  [+ lambda * D(mean_c g_S^c, mean_c g_T^c)]   (level: intra/inter/multilevel)
        one SGD step on the synthetic images
        if t < T-1: update the network on the synthetic set (fixed / until overfitting / adaptive steps)
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import NamedTuple
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch.func import functional_call, grad, vmap

from . import dsa
from .condense_config import INNER_STEPS, LEVELS, LOOPS, VARIANTS, CondenseConfig, loops_for  # noqa: F401
from .data import Data, sample_class
from .dsa_strategies import strategy_for
from .errors import ArtifactError, NonFiniteError
from .io import write_safetensors
from .matching import match_loss
from .models import build_model, has_batchnorm
from .seeding import derive_seed, generator, torch_seeded
from .precision import autocast

log = logging.getLogger(__name__)

class Condensed(NamedTuple):
    images: torch.Tensor
    labels: torch.Tensor
    losses: list          # mean matching loss per outer iteration
    net_updates: list     # network updates (passes over the synthetic set) per outer iteration


def adaptive_steps(t: int) -> int:
    """zeta_theta(t) of the follow-up's eq. 12: 50 - 10t for t < 4, 10 for 4 <= t < 10, 5 after."""
    return 50 - 10 * t if t < 4 else 10 if t < 10 else 5


def steps_until_rise(step, real_loss, cap: int) -> int:
    """The "O" rule: take network steps while the loss on real data keeps falling; stop after the first step
    that raises it (that step is kept, as in the follow-up's code) or after `cap` steps. Returns steps taken."""
    before = real_loss()
    for n in range(1, cap + 1):
        step()
        after = real_loss()
        if after > before:
            return n
        before = after
    return cap


def class_mean(grads_per_class):
    """Gradient of the class-balanced mean loss over the union of the per-class batches (follow-up eq. 5 with
    equal batch sizes): the average of the per-class gradients, so no extra forward or backward pass."""
    return [torch.stack(gs).mean(0) for gs in zip(*grads_per_class)]


def class_gradients(net: torch.nn.Module, real: torch.Tensor, vectorised: bool = False,
                    precision: str = "fp32") -> list[list[torch.Tensor]]:
    """Gradients of the cross-entropy of each class's real batch w.r.t. the network's parameters: real is
    (classes, batch, C, H, W) and class c's images carry label c. `vectorised` computes all classes in one
    vmapped pass (torch.func); otherwise one forward/backward per class. Both give the same gradients (to float
    tolerance: tests/test_batched_training.py); which is faster depends on the device (reports/records/bench.json): on
    this 2-core CPU the loop wins, since each class's batch already fills the cores and vmap adds copies. BatchNorm
    must be frozen (eval mode) so that no statistic mixes classes (DC appendix A freezes it on real data anyway).
    precision "bf16" runs the passes under bf16 autocast; the gradients come back in the parameters' fp32."""
    with autocast(real.device, precision):
        return _class_gradients(net, real, vectorised)


def _class_gradients(net, real, vectorised):
    classes, batch = real.shape[:2]
    labels = torch.arange(classes, device=real.device)[:, None].expand(classes, batch)
    params = dict(net.named_parameters())
    if not vectorised:
        return [[g.detach() for g in torch.autograd.grad(F.cross_entropy(net(x), y), list(params.values()))]
                for x, y in zip(real, labels)]
    def loss(p, x, y):
        return F.cross_entropy(functional_call(net, p, (x,)), y)

    frozen = {k: v.detach() for k, v in params.items()}
    per_class = vmap(grad(loss), in_dims=(None, 0, 0))(frozen, real, labels)
    return [[per_class[k][c] for k in params] for c in range(classes)]


def _freeze_bn_on_real(net, data: Data, class_idx, n_per_class, gen):
    """DC appendix A: estimate BatchNorm statistics from real data and freeze them before matching.
    momentum=None gives the exact average over the batch instead of the reference's 0.1-EMA of one batch."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(data.x_train[torch.cat([sample_class(ix, n_per_class, gen) for ix in class_idx])])
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def init_synthetic(data: Data, cfg: CondenseConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(derive_seed(seed, "init"))
    labels = torch.arange(data.num_classes).repeat_interleave(cfg.ipc).to(data.x_train.device)
    if cfg.init == "noise":
        x = torch.randn(len(labels), data.channels, *data.im_size, generator=g).to(data.x_train.device)
    elif cfg.init == "real":
        small = [c for c, ix in enumerate(data.class_indices()) if len(ix) < cfg.ipc]
        if small:
            raise ValueError(f"init 'real' needs {cfg.ipc} images per class; classes {small} have fewer")
        idx = torch.cat([sample_class(ix, cfg.ipc, g) for ix in data.class_indices()])
        x = data.x_train[idx].clone()
    else:
        raise ValueError(f"unknown init {cfg.init!r}; valid: noise, real")
    return x, labels


class LoopStart(NamedTuple):
    """What both condensation loops (gradient matching here, distribution matching in dm.py) start from."""
    syn: torch.Tensor              # the synthetic images, learnable
    labels: torch.Tensor
    opt_img: torch.optim.Optimizer
    start: int                     # the first iteration to run (> 0 when resumed from the checkpoint)
    losses: list[float]
    net_updates: list[int]
    class_idx: list[torch.Tensor]  # real training images of each class
    syn_idx: list[torch.Tensor]    # synthetic images of each class
    strategy: object               # the DSA strategy, or None


def start_loop(data: Data, cfg: CondenseConfig, seed: int, checkpoint: Path | None) -> LoopStart:
    syn, labels = init_synthetic(data, cfg, seed)
    syn.requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
    start, losses, net_updates = 0, [], []
    if checkpoint is not None and checkpoint.exists():
        start, losses, net_updates = load_checkpoint(checkpoint, syn, opt_img, cfg, seed)
        log.info("resuming from %s at iteration %d", checkpoint, start)
    syn_idx = [torch.nonzero(labels == c).flatten() for c in range(data.num_classes)]
    strategy = strategy_for(cfg.dsa, data.name) if cfg.dsa else None
    return LoopStart(syn, labels, opt_img, start, losses, net_updates, data.class_indices(), syn_idx, strategy)


def kept_checkpoint(checkpoint: Path | None) -> str:
    """What a diverged run leaves to resume from: its last good checkpoint, where one was written before."""
    if checkpoint is not None and checkpoint.exists():
        return f"the last good checkpoint is kept ({checkpoint})"
    return "no checkpoint was written before it, so a rerun starts from the beginning"


def condense(data: Data, cfg: CondenseConfig, seed: int, checkpoint: Path | None = None, progress=None):
    """Learn cfg.ipc synthetic images per class. Returns Condensed(images, labels, losses, net_updates).

    Every random choice of iteration k comes from derive_seed(seed, ..., k), so a run resumed from a checkpoint
    is bit-identical to an uninterrupted one.
    """
    outer, inner = cfg.loops()
    dev = data.x_train.device
    syn, labels, opt_img, start, losses, net_updates, class_idx, syn_idx, strategy = start_loop(data, cfg, seed,
                                                                                              checkpoint)

    for it in range(start, cfg.iterations):
        with torch_seeded(derive_seed(seed, "net", it)):
            net = build_model(cfg.model, data.channels, data.num_classes, data.im_size).to(dev)
        params = [p for p in net.parameters()]
        opt_net = torch.optim.SGD(params, lr=cfg.lr_net, momentum=cfg.momentum_net)
        gen = generator(derive_seed(seed, "batches", it))
        bn = has_batchnorm(net)
        vectorise = cfg.vectorise_classes == "on" or (cfg.vectorise_classes == "auto" and dev.type == "cuda")
        total, updates = 0.0, 0
        aug_gen = generator(derive_seed(seed, "dsa", it))  # its own stream: DC without DSA draws exactly as before
        for t in range(outer):
            if bn:
                _freeze_bn_on_real(net, data, class_idx, cfg.bn_real_per_class, gen)
            real = [data.x_train[sample_class(ix, cfg.batch_real, gen)] for ix in class_idx]
            syn_c = [syn[ix] for ix in syn_idx]
            if strategy:  # DSA: one draw per class and step, shared by its real and synthetic batch
                real, syn_c = zip(*(dsa.siamese([r, s], strategy, aug_gen) for r, s in zip(real, syn_c)))
            gw_real_c = class_gradients(net, torch.stack(real), vectorised=vectorise, precision=cfg.real_precision)
            gw_syn_c = [torch.autograd.grad(F.cross_entropy(net(s), labels[ix]), params, create_graph=True)
                        for s, ix in zip(syn_c, syn_idx)]
            level = cfg.level if cfg.level != "interleaved" else ("intra", "inter")[it % 2]
            loss = syn.new_zeros(())
            if level in ("intra", "multilevel"):
                loss = loss + sum(match_loss(gs, gr, cfg.distance) for gs, gr in zip(gw_syn_c, gw_real_c))
            if level in ("inter", "multilevel"):
                lam = data.num_classes if cfg.lambda_inter is None else cfg.lambda_inter
                loss = loss + lam * match_loss(class_mean(gw_syn_c), class_mean(gw_real_c), cfg.distance)
            if not torch.isfinite(loss):
                raise NonFiniteError(f"matching loss became {loss.item()} at iteration {it}, step {t}; "
                                     f"{kept_checkpoint(checkpoint)}. Lower lr_img or check the data.")
            opt_img.zero_grad(set_to_none=True)
            loss.backward()
            opt_img.step()
            total += loss.item()
            if t == outer - 1:
                break  # the network is not used after the last matching step (DC appendix A)
            x_syn = syn.detach()

            def net_step():  # one pass over the synthetic set, mini-batches of batch_train
                net.train()
                perm = torch.randperm(len(labels), generator=gen).to(dev)
                for i in range(0, len(labels), cfg.batch_train):
                    b = perm[i:i + cfg.batch_train]
                    # DSA trains the network on augmented synthetic images too (per image, as the authors' code)
                    xb = dsa.augment(x_syn[b], strategy, aug_gen) if strategy else x_syn[b]
                    with autocast(dev, cfg.inner_precision):
                        l_net = F.cross_entropy(net(xb), labels[b])
                    opt_net.zero_grad(set_to_none=True)
                    l_net.backward()
                    opt_net.step()

            if cfg.inner_steps == "overfit":
                watch = torch.randperm(len(data.y_train), generator=gen)[:cfg.overfit_batch].to(dev)

                def real_loss():
                    net.eval()  # no BatchNorm statistics from the watch batch
                    with torch.no_grad():
                        return F.cross_entropy(net(data.x_train[watch]), data.y_train[watch]).item()

                updates += steps_until_rise(net_step, real_loss, cfg.overfit_cap)
            else:
                n = inner if cfg.inner_steps == "fixed" else adaptive_steps(t)
                for _ in range(n):
                    net_step()
                updates += n
        if not torch.isfinite(syn).all():
            raise NonFiniteError(f"synthetic images became non-finite at iteration {it}; {kept_checkpoint(checkpoint)}. "
                                 "Lower lr_img or check the data.")
        losses.append(total / (data.num_classes * outer))
        net_updates.append(updates)
        if progress:
            progress(it, losses[-1])
        if checkpoint is not None and ((it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations):
            save_checkpoint(checkpoint, syn, opt_img, it + 1, losses, net_updates, cfg, seed)
    return Condensed(syn.detach(), labels, losses, net_updates)


def _fingerprint(cfg: CondenseConfig, seed: int) -> str:
    return repr(sorted(asdict(cfg).items()) + [("seed", seed)])


def save_checkpoint(path: Path, syn, opt_img, next_it, losses, net_updates, cfg, seed):
    buf = opt_img.state[syn].get("momentum_buffer")
    tensors = {"syn": syn.detach().contiguous(), "losses": torch.tensor(losses, dtype=torch.float64),
               "net_updates": torch.tensor(net_updates, dtype=torch.int64)}
    if buf is not None:
        tensors["momentum_buffer"] = buf.contiguous()
    write_safetensors(path, tensors, metadata={"next_iteration": str(next_it), "fingerprint": _fingerprint(cfg, seed)})


def load_checkpoint(path: Path, syn, opt_img, cfg, seed):
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        t = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(f"checkpoint {path} is unreadable ({e}); delete it to start afresh") from e
    if meta.get("fingerprint") != _fingerprint(cfg, seed):
        raise ArtifactError(f"checkpoint {path} was written with other settings; delete it to start afresh")
    with torch.no_grad():
        syn.copy_(t["syn"])
    if "momentum_buffer" in t:
        opt_img.state[syn]["momentum_buffer"] = t["momentum_buffer"].to(syn.device)
    return int(meta["next_iteration"]), t["losses"].tolist(), t["net_updates"].tolist()
