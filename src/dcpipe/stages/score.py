"""Stage score (and `dcpipe score`): a distilled set from anywhere, checked against a prepared dataset and scored
under the parameter file's fixed protocol (dcpipe.score)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import provenance, write_json
from ..jobs import ScoreJob
from ..runtime import Progress
from ..score import checked, score as score_set
from ..set_files import load_set
from .common import device, load_data

log = logging.getLogger("dcpipe")


def score(job: ScoreJob, path: Path, prepared: Path, out: Path, entry: int = -1,
          pixels: str = "normalised") -> dict:
    """Read, check (before any training), score and write `out` (JSON); returns the result."""
    s = load_set(path, entry)  # a bad file fails here, before the dataset is loaded
    d = load_data(job.env, prepared, device(job.env))
    x, y, soft = checked(s.images, s.labels, d, pixels, where=str(path), soft=s.soft)
    bar = Progress(job.cfg.models, f"score {path.name} on {job.dataset}", job.env.log_every)
    result = score_set(x, y, d, job.cfg, job.seed, progress=bar, soft=soft)
    bar.close()
    result.update(path=str(path), source=s.source, dataset=job.dataset, pixels=pixels, seed=job.seed,
                  provenance=provenance())
    write_json(out, result)
    return result
