"""Stage evaluate_cross: a cross study's set trained on each evaluation network of its study, one job per network,
the way stage evaluate trains a set on its own network."""

from __future__ import annotations

from pathlib import Path

from ..jobs import EvaluateJob
from .evaluate import train_and_test


def evaluate_cross(job: EvaluateJob, prepared: Path, train_set: Path, out: Path) -> None:
    """The set trained on the evaluation network the job names (artifacts.EVAL_ON)."""
    train_and_test(job, prepared, train_set, out)
