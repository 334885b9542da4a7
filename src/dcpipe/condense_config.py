"""The settings of a condensation (dcpipe.condense runs it): the config, the paper's outer/inner loop schedule per IPC,
the matching levels and the follow-up's named variants, read by the parameter checks, the method names and the jobs
without the condensation's code."""

from __future__ import annotations

from dataclasses import dataclass

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
    # follow-up paper (Jiang et al.)
    level: str = "intra"         # intra (DC) | inter | multilevel (its eq. 6) | interleaved (intra, inter, ...)
    lambda_inter: float | None = None  # weight of the inter-class term; None = number of classes (its choice)
    inner_steps: str = "fixed"   # fixed (inner_loop) | overfit ("O": until the real loss rises) | adaptive ("A", eq. 12)
    overfit_cap: int = 50        # most network updates of the "O" rule per outer step
    overfit_batch: int = 256     # real images (all classes) on which "O" watches the loss
    vectorise_classes: str = "auto"  # real gradients of all classes in one vmapped pass: on | off | auto (CUDA only)
    # "bf16": autocast the real-gradient pass (forward + backward of the 256-image real batches, the bulk of an
    # IPC-1 iteration); synthetic gradients and the matching loss stay fp32, so only the target is rounded.
    real_precision: str = "fp32"
    inner_precision: str = "fp32"  # "bf16": autocast the network's inner updates on the synthetic set (ς_θ steps)
    # The authors' successors (methods.SUCCESSORS): a DSA strategy (dsa_strategies.strategy_for: "auto" = theirs for
    # the dataset) applied siamese to each class's real and synthetic batch, and what is matched: "gradients" (DC,
    # this loop) or "distribution" (DM: mean embeddings, dcpipe.dm).
    dsa: str | None = None
    objective: str = "gradients"

    def loops(self) -> tuple[int, int]:
        return (self.outer_loop, self.inner_loop) if self.outer_loop else loops_for(self.ipc)


LEVELS = ("intra", "inter", "multilevel", "interleaved")
INNER_STEPS = ("fixed", "overfit", "adaptive")
# Named variants of the follow-up's Table 3: M = multi-level, D = angle + magnitude distance (its eq. 9,
# d1 + d2), O = update the network until overfitting, A = adaptive steps.
VARIANTS = {
    "DC": {"level": "intra", "distance": "ours", "inner_steps": "fixed"},
    "M": {"level": "multilevel", "distance": "ours", "inner_steps": "fixed"},
    "MD": {"level": "multilevel", "distance": "improved", "inner_steps": "fixed"},
    "MDO": {"level": "multilevel", "distance": "improved", "inner_steps": "overfit"},
    "MDA": {"level": "multilevel", "distance": "improved", "inner_steps": "adaptive"},
}

# The DC authors' successors, as settings of the one condense stage (condense.CondenseConfig):
# DSA (ICML 2021) is DC plus differentiable siamese augmentation; DM (WACV 2023) matches mean embeddings under
# random networks (dcpipe.dm), with DSA on and its lr_img 1.0. Both start from real images: the authors' readme
# runs DSA with `--init real`, and real initialisation is DM's default.
SUCCESSORS = {
    "DSA": {**VARIANTS["DC"], "dsa": "auto", "init": "real"},
    "DM": {"objective": "distribution", "dsa": "auto", "lr_img": 1.0, "init": "real"},
}
