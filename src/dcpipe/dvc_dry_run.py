"""Make `dvc repro --dry` plan a fresh clone instead of stopping at its first stage with a missing input.

DVC 3.67 (the newest release) looks a stage up in its run cache even in a dry run, and hashing a dependency that an
upstream stage has not produced yet raises FileNotFoundError (treeverse/dvc#9818, open): on a fresh clone the dry
run dies at the first stage that reads another stage's output. A dependency that does not exist cannot have a run
cache entry, so answering "no run cache" for such a stage is exactly what DVC means to do; real runs are unchanged
(there every dependency exists by the time its stage runs). Installed by the project's set-up as a `.pth` line that
imports this module only inside the `dvc` command (Makefile, target `setup`).
"""

from __future__ import annotations

import os


def _patch() -> None:
    from dvc.stage import cache  # optional: DVC is only there under `make dvc-repro`

    original = cache._can_hash
    if getattr(original, "dcpipe_patched", False):
        return

    def can_hash(stage):
        if any(dep.protocol == "local" and dep.def_path and not os.path.exists(dep.fs_path) for dep in stage.deps):
            return False
        return original(stage)

    can_hash.dcpipe_patched = True
    cache._can_hash = can_hash


def install_if_dvc(argv0: str) -> None:
    """Called from the .pth line (which runs at every interpreter start, and imports this only for `dvc`)."""
    if os.path.basename(argv0) == "dvc":
        try:
            _patch()
        except ImportError:  # dvc not installed in this environment: nothing to fix
            pass
