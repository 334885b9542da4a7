"""Stage nas_split: hold the NAS validation images out of the training split (a prepared-dataset variant)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..nas import make_search_split
from ..seeding import derive_seed

log = logging.getLogger("dcpipe")


def nas_split(params, prepared: Path, out: Path) -> None:
    meta = make_search_split(prepared, out, params["nas"]["validation"],
                             derive_seed(params["seed"], "nas", params["nas"]["dataset"], "validation"))
    log.info("search split of %s: %d training / %d validation images", meta["held_out_from"]["dataset"],
             meta["n_train"], meta["n_validation"])
