"""Stage prepare_data: locate a dataset in the local mirrors and write its uint8 cache."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import data
from ..jobs import PrepareJob

log = logging.getLogger("dcpipe")


def prepare_data(job: PrepareJob, out: Path, staging: Path) -> None:
    dataset = job.dataset
    meta = data.prepare(dataset, out, list(job.mirrors), staging)
    log.info("prepared %s: %d train / %d test images, sources %s", dataset, meta["n_train"], meta["n_test"],
             {k: v["sha256"][:12] for k, v in meta["sources"].items()})
