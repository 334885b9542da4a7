"""Stage score (and `dcpipe score`): a distilled set from anywhere, checked against a prepared dataset and scored
under the parameter file's fixed protocol (dcpipe.score)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import runtime, score_config
from ..io import provenance, write_json
from ..runtime import Progress
from ..score import checked, load_set, score
from ..seeding import derive_seed
from .common import device, load_data

log = logging.getLogger("dcpipe")


def score_file(params, path: Path, dataset: str, prepared: Path, out: Path, entry: int = -1,
               pixels: str = "normalised") -> dict:
    """Read, check (before any training), score and write `out` (JSON); returns the result."""
    images, labels, source = load_set(path, entry)  # a bad file fails here, before the dataset is loaded
    d = load_data(params, prepared, device(params))
    x, y = checked(images, labels, d, pixels, where=str(path))
    cfg = score_config(params, dataset)
    # the seed depends on the protocol's base seed and the dataset, not the file: every set sees the same networks
    seed = derive_seed(params["seed"], "score", dataset)
    bar = Progress(cfg.models, f"score {path.name} on {dataset}", runtime(params).log_every)
    result = score(x, y, d, cfg, seed, progress=bar)
    bar.close()
    result.update(path=str(path), source=source, dataset=dataset, pixels=pixels, seed=seed, provenance=provenance())
    write_json(out, result)
    return result
