"""Distribution matching (DM; Zhao & Bilen, WACV 2023): another objective of the condense stage.

for each of K iterations:                         (a fresh randomly initialised network each time, never trained)
    per class c, with one DSA draw shared by the class's two batches:
        loss += || mean_i psi(A(T_c))_i - mean_j psi(A(S_c))_j ||^2      (psi: the network's embedding)
    one SGD step on the synthetic images

There is no bi-level loop: no network update and no second-order gradient, so an iteration costs one forward of
the real batches and one forward/backward of the synthetic images. The authors' defaults (their main_DM.py):
K = 20,000, lr_img 1.0 (momentum 0.5), 256 real images per class, real initialisation, DSA on. The real
embedding follows condense.real_precision (bf16: 0.40 instead of 0.77 CPU-s per FashionMNIST IPC-1 iteration at
real batch 64, 1 thread, on this project's 2-core CPU). Checkpoints,
initialisation and seeding are condense.py's, so a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import dsa
from .condense import CondenseConfig, Condensed, condense, kept_checkpoint, save_checkpoint, start_loop
from .data import Data, sample_class
from .errors import NonFiniteError, ParamsError
from .models import build_model
from .seeding import derive_seed, generator, torch_seeded
from .precision import autocast


def embed(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's embedding of x: the flattened output of its feature extractor, before the classifier."""
    if not hasattr(net, "features"):
        raise ParamsError(f"{type(net).__name__} has no `features` block to embed with; DM needs a ConvNet, "
                          f"LeNet, AlexNet or VGG11")
    return net.features(x).flatten(1)


def mean_embedding_loss(real_embedding: torch.Tensor, syn_embedding: torch.Tensor) -> torch.Tensor:
    """The squared distance between the mean embeddings of a real batch and of the synthetic images of a class."""
    return (real_embedding.mean(0) - syn_embedding.mean(0)).square().sum()


def distribution_match(data: Data, cfg: CondenseConfig, seed: int, checkpoint: Path | None = None,
                       progress=None) -> Condensed:
    """Learn cfg.ipc synthetic images per class by distribution matching; returns condense's Condensed (the
    network updates are 0: the networks are never trained)."""
    dev = data.x_train.device
    syn, labels, opt_img, start, losses, _, class_idx, syn_idx, strategy = start_loop(data, cfg, seed, checkpoint)
    for it in range(start, cfg.iterations):
        with torch_seeded(derive_seed(seed, "net", it)):
            net = build_model(cfg.model, data.channels, data.num_classes, data.im_size).to(dev)
        net.train()  # as the authors' code (it matters only for BatchNorm networks)
        for p in net.parameters():
            p.requires_grad_(False)
        gen = generator(derive_seed(seed, "batches", it))
        aug_gen = generator(derive_seed(seed, "dsa", it))
        loss = syn.new_zeros(())
        for ix_real, ix_syn in zip(class_idx, syn_idx):
            real, s = data.x_train[sample_class(ix_real, cfg.batch_real, gen)], syn[ix_syn]
            if strategy:
                real, s = dsa.siamese([real, s], strategy, aug_gen)
            with torch.no_grad(), autocast(dev, cfg.real_precision):  # the real pass's switch, as DC's
                real_embedding = embed(net, real).float()
            loss = loss + mean_embedding_loss(real_embedding, embed(net, s))
        if not torch.isfinite(loss):
            raise NonFiniteError(f"distribution-matching loss became {loss.item()} at iteration {it}; "
                                 f"{kept_checkpoint(checkpoint)}. Lower lr_img or check the data.")
        opt_img.zero_grad(set_to_none=True)
        loss.backward()
        opt_img.step()
        losses.append(loss.item() / data.num_classes)
        if progress:
            progress(it, losses[-1])
        if checkpoint is not None and ((it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations):
            save_checkpoint(checkpoint, syn, opt_img, it + 1, losses, [0] * len(losses), cfg, seed)
    return Condensed(syn.detach(), labels, losses, [0] * len(losses))


def synthesise(data: Data, cfg: CondenseConfig, seed: int, checkpoint: Path | None = None, progress=None):
    """The condense stage's one entry: gradient matching (DC, DSA and the follow-up's variants) or DM."""
    if cfg.objective == "distribution":
        return distribution_match(data, cfg, seed, checkpoint, progress)
    if cfg.objective != "gradients":
        raise ParamsError(f"unknown condensation objective {cfg.objective!r}; valid: gradients, distribution")
    return condense(data, cfg, seed, checkpoint, progress)
