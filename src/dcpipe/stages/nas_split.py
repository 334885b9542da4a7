"""Stage nas_split: hold the NAS validation images out of the training split (a prepared-dataset variant)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..nas import make_search_split
from ..jobs import NasJob

log = logging.getLogger("dcpipe")


def nas_split(job: NasJob, prepared: Path, out: Path) -> None:
    meta = make_search_split(prepared, out, job.validation, job.validation_seed)
    log.info("search split of %s: %d training / %d validation images", meta["held_out_from"]["dataset"],
             meta["n_train"], meta["n_validation"])
