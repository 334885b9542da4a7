"""The fixed protocol of `dcpipe score` (no torch): what the parameter file's `score:` section sets and the jobs
carry; dcpipe.score runs it."""

from __future__ import annotations

from dataclasses import dataclass

from .train_config import TrainConfig


@dataclass(frozen=True)
class ScoreConfig:
    model: str = "ConvNet"
    models: int = 5
    train: TrainConfig = TrainConfig()
    random_baseline: bool = True


# the dataset's mean/std already applied | floats in [0, 1] | 0-255 | ZCA-whitened: declared, to be refused
PIXELS = ("normalised", "unit", "uint8", "zca")
ZCA_REFUSED = ("ZCA-whitened sets (MTT's and DATM's CIFAR sets) are not supported: dcpipe evaluates in "
               "the dataset's mean/std space; distill with ZCA off (MTT: without --zca; DATM: zca: False)")
