"""Dataset condensation with gradient matching: Algorithm 1 of the DC paper, top to bottom.

for each of K outer iterations:                    (a fresh randomly initialised network each time)
    for t in 0..T-1:                               (T = outer_loop of the IPC schedule)
        freeze BatchNorm statistics estimated on real data
        for each class c: D(grad L(S_c), grad L(T_c))  summed, then one SGD step on the synthetic images
        if t < T-1: inner_loop SGD steps of the network on the synthetic set
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .data import Data, sample_class
from .io import ArtifactError, atomic_path
from .matching import match_loss
from .models import build_model, has_batchnorm
from .seeding import derive_seed, generator, torch_seeded

log = logging.getLogger(__name__)

# (outer_loop T, inner_loop ς_θ) per images-per-class, DC appendix A: T = IPC and ς_θ = 500 / T beyond 10.
LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def loops_for(ipc: int) -> tuple[int, int]:
    if ipc not in LOOPS:
        raise ValueError(f"no outer/inner loop schedule for IPC {ipc}; valid: {', '.join(map(str, LOOPS))}")
    return LOOPS[ipc]


@dataclass(frozen=True)
class CondenseConfig:
    model: str = "ConvNet"
    ipc: int = 1
    iterations: int = 1000     # K
    lr_img: float = 0.1        # η_S (0.01 for MLP in the cross-architecture study)
    momentum_img: float = 0.5
    lr_net: float = 0.01       # η_θ
    momentum_net: float = 0.5  # the DC-era reference code (which produced the paper's numbers) used 0.5
    batch_real: int = 256      # real images per class per matching step
    batch_train: int = 256     # mini-batch of the network's inner updates on the synthetic set
    bn_real_per_class: int = 32  # real images per class for the frozen BatchNorm statistics
    init: str = "noise"        # "noise" (the paper's choice) or "real"
    distance: str = "ours"
    checkpoint_every: int = 10
    outer_loop: int | None = None  # None: the paper's schedule for this IPC (LOOPS)
    inner_loop: int | None = None

    def loops(self) -> tuple[int, int]:
        return (self.outer_loop, self.inner_loop) if self.outer_loop else loops_for(self.ipc)


class NonFiniteError(RuntimeError):
    pass


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
        idx = torch.cat([sample_class(ix, cfg.ipc, g) for ix in data.class_indices()])
        x = data.x_train[idx].clone()
    else:
        raise ValueError(f"unknown init {cfg.init!r}; valid: noise, real")
    return x, labels


def condense(data: Data, cfg: CondenseConfig, seed: int, checkpoint: Path | None = None, progress=None):
    """Learn cfg.ipc synthetic images per class. Returns (images, labels, per-iteration mean matching loss).

    Every random choice of iteration k comes from derive_seed(seed, ..., k), so a run resumed from a checkpoint
    is bit-identical to an uninterrupted one.
    """
    outer, inner = cfg.loops()
    dev = data.x_train.device
    syn, labels = init_synthetic(data, cfg, seed)
    syn.requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
    losses: list[float] = []
    start = 0
    if checkpoint is not None and checkpoint.exists():
        start, losses = _load_checkpoint(checkpoint, syn, opt_img, cfg, seed)
        log.info("resuming from %s at iteration %d", checkpoint, start)
    class_idx = data.class_indices()
    syn_idx = [torch.nonzero(labels == c).flatten() for c in range(data.num_classes)]

    for it in range(start, cfg.iterations):
        with torch_seeded(derive_seed(seed, "net", it)):
            net = build_model(cfg.model, data.channels, data.num_classes, data.im_size).to(dev)
        params = [p for p in net.parameters()]
        opt_net = torch.optim.SGD(params, lr=cfg.lr_net, momentum=cfg.momentum_net)
        gen = generator(derive_seed(seed, "batches", it))
        bn = has_batchnorm(net)
        total = 0.0
        for t in range(outer):
            if bn:
                _freeze_bn_on_real(net, data, class_idx, cfg.bn_real_per_class, gen)
            loss = syn.new_zeros(())
            for c in range(data.num_classes):
                real = data.x_train[sample_class(class_idx[c], cfg.batch_real, gen)]
                y_real = torch.full((len(real),), c, device=dev)
                gw_real = torch.autograd.grad(F.cross_entropy(net(real), y_real), params)
                gw_real = [g.detach() for g in gw_real]
                s = syn[syn_idx[c]]
                gw_syn = torch.autograd.grad(F.cross_entropy(net(s), labels[syn_idx[c]]), params, create_graph=True)
                loss = loss + match_loss(gw_syn, gw_real, cfg.distance)
            if not torch.isfinite(loss):
                raise NonFiniteError(f"matching loss became {loss.item()} at iteration {it}, step {t}; the last good "
                                     f"checkpoint is kept ({checkpoint}). Lower lr_img or check the data.")
            opt_img.zero_grad(set_to_none=True)
            loss.backward()
            opt_img.step()
            total += loss.item()
            if t == outer - 1:
                break  # the network is not used after the last matching step (DC appendix A)
            net.train()
            x_syn, y_syn = syn.detach(), labels
            for _ in range(inner):
                perm = torch.randperm(len(y_syn), generator=gen).to(dev)
                for i in range(0, len(y_syn), cfg.batch_train):
                    b = perm[i:i + cfg.batch_train]
                    l_net = F.cross_entropy(net(x_syn[b]), y_syn[b])
                    opt_net.zero_grad(set_to_none=True)
                    l_net.backward()
                    opt_net.step()
        if not torch.isfinite(syn).all():
            raise NonFiniteError(f"synthetic images became non-finite at iteration {it}; last good checkpoint kept")
        losses.append(total / (data.num_classes * outer))
        if progress:
            progress(it, losses[-1])
        if checkpoint is not None and ((it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations):
            _save_checkpoint(checkpoint, syn, opt_img, it + 1, losses, cfg, seed)
    return syn.detach(), labels, losses


def _fingerprint(cfg: CondenseConfig, seed: int) -> str:
    return repr(sorted(asdict(cfg).items()) + [("seed", seed)])


def _save_checkpoint(path: Path, syn, opt_img, next_it, losses, cfg, seed):
    buf = opt_img.state[syn].get("momentum_buffer")
    tensors = {"syn": syn.detach().contiguous(), "losses": torch.tensor(losses, dtype=torch.float64)}
    if buf is not None:
        tensors["momentum_buffer"] = buf.contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"next_iteration": str(next_it), "fingerprint": _fingerprint(cfg, seed)})


def _load_checkpoint(path: Path, syn, opt_img, cfg, seed):
    from safetensors import SafetensorError, safe_open

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
    return int(meta["next_iteration"]), t["losses"].tolist()
