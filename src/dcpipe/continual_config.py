"""The continual-learning experiment's settings (no torch): its config and the four settings of DC Figure 4, what
the parameter file sets and the jobs carry; dcpipe.continual runs them."""

from __future__ import annotations

from dataclasses import dataclass


MEMORIES = ("herding", "DC")


@dataclass(frozen=True)
class ContinualConfig:
    model: str = "ConvNet"
    memory_per_class: int = 10     # per earlier task (DC paper: 10 images/class)
    iterations: int = 5000         # training steps per stage (E2E / DC appendix A)
    finetune_iterations: int = 500  # balanced fine-tuning steps per stage
    lr: float = 0.01
    finetune_lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch: int = 128               # E2E's mini-batch (the DC paper gives none for this experiment)
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    test_per_task: int = 2000
    herding_candidates: int | None = None  # images per class herding looks at (None: all of them)
    test_batch: int = 1000
    precision: str = "fp32"        # "bf16": autocast each training step's forward and losses (weights stay fp32)


@dataclass(frozen=True)
class Setting:
    memory: str          # "herding" or "DC"
    distillation: bool

    @property
    def name(self) -> str:
        return f"{self.memory} {'with' if self.distillation else 'without'} KD"
