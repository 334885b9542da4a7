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
