"""What every reader of a training set checks before a network trains on it (no torch: numpy arrays): `dcpipe score`
(score.checked) and the stages that train on a condensed set or a coreset (stages.common.training_set), which
import this and not each other's code."""

from __future__ import annotations

import numpy as np


def span(values: np.ndarray) -> str:
    """The range of integer values as `min..max` (-1..8 reads clearly where -1-8 does not)."""
    return f"{int(values.min())}..{int(values.max())}"


def non_finite_pixels(images: np.ndarray) -> str | None:
    """What makes a set's images untrainable: NaN or inf pixels (a set saved from a diverged run), None when every
    value is finite. Every reader of a set checks this before any network trains on it (score, and the stages'
    training_set): a model trained on NaN scores chance, which would be recorded as a result."""
    bad = ~np.isfinite(images)
    if not bad.any():
        return None
    n, nan = int(bad.sum()), int(np.isnan(images).sum())
    return f"{n} of {images.size} pixel values are not finite ({nan} nan, {n - nan} inf)"
