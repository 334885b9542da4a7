"""The training protocol's settings (no torch): what the parameter file sets and the jobs carry; dcpipe.train
runs it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch: int = 256
    augment: bool = False  # crop/scale/rotate, one op per image (DC appendix A, MNIST only)
    test_batch: int = 1000
    test_precision: str = "fp32"  # "bf16": autocast the test pass (measured in reports/records/precision_check.json)
    train_precision: str = "fp32"  # "bf16": autocast each training step's forward and loss (weights, SGD stay fp32)
    # Stop after this many SGD steps instead of `epochs` epochs, the lr drop moving to steps // 2: the NAS
    # "early-stopping" baseline (DC section 3.2), the whole training set for as many iterations as a proxy set.
    steps: int | None = None
    # DSA evaluation (the DSA and DM papers): a DSA strategy (dsa_strategies.GROUPS joined by "_"), one random draw
    # per image; it replaces `augment`, as in the authors' code, and they train 1,000 epochs with it.
    dsa: str | None = None
