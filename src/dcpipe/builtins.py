"""The built-in condensations behind the same door as a plug-in (dcpipe.plugin's signature; data: its RealData,
checkpoint: its Checkpoint or None): DC, its variants, DSA and DM are settings of one condensation (their
CondenseConfig, resolved by jobs.condense_job). The coresets: dcpipe.builtin_coresets."""

from __future__ import annotations

from .condense_config import CondenseConfig
from .data import Data
from .dm import synthesise


def as_data(data) -> Data:
    """The algorithms' Data of a method's RealData (the condensation reads no test images)."""
    empty = data.images[:0]
    return Data(data.dataset, data.images, data.labels, empty, data.labels[:0], data.classes, data.mean, data.std)


def condense(data, ipc: int, seed: int, device, settings: dict, progress, checkpoint):
    """Gradient matching (DC, DSA and the follow-up's variants) or distribution matching (DM): `settings` is the
    cell's whole CondenseConfig. The condensation checkpoints itself (its own fingerprint) at the door's path."""
    cfg = CondenseConfig(**settings)
    images, labels, losses, net_updates = synthesise(
        as_data(data), cfg, seed, checkpoint=checkpoint.path if checkpoint else None,
        progress=lambda it, loss: progress(it, cfg.iterations, loss))
    return images, labels, {"matching_loss": losses, "net_updates": net_updates}
