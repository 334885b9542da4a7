"""Stage prepare_data: one dataset's checked raw files into its uint8 cache."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import data

log = logging.getLogger("dcpipe")


def prepare_data(dataset: str, manifest: Path, out: Path) -> None:
    meta = data.prepare(dataset, out, manifest)
    log.info("prepared %s: %d train / %d test images from %s", dataset, meta["n_train"], meta["n_test"],
             ", ".join(meta["sources"]))
