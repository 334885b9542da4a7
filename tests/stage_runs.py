"""What the stage-level tests share: real stage scripts run as subprocesses on tiny real-data parameters."""
from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path

import yaml

from tests.conftest import DELETE, set_dotted

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
SMOKE = yaml.safe_load((ROOT / ".test/params.yaml").read_text())
for _plugin in SMOKE.get("plugins", {}).values():  # a parameter file written elsewhere finds the examples here
    _plugin["path"] = str((ROOT / ".test" / _plugin["path"]).resolve())
PROGRESS_LINE = re.compile(r"(condense|evaluate) \S+ ipc\d+ .*\b1/\d+ value=|score \S+ on \S+ 1/\d+ value=")


def stage_env(**overrides) -> dict:
    """The environment of a stage subprocess: this interpreter's venv first, the worktree's library, one thread."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DCPIPE_FAKE_GPUS="0")  # no GPU lease: a CPU test
    env.update(overrides)
    return env


def tiny_params(**updates) -> dict:
    """.test/params.yaml shrunk to seconds: 20 real images per class, 12 iterations of IPC 1, CPU, one thread."""
    p = copy.deepcopy(SMOKE)
    for section in ("studies", "continual", "nas", "plugins"):  # the main experiment of the built-ins only
        p.pop(section, None)
    p["experiment"]["methods"] = [m for m in p["experiment"]["methods"] if m not in SMOKE.get("plugins", {})]
    p["data"]["train_subset"] = 20
    p["condense"].update(iterations={1: 12}, checkpoint_every=2, batch_real=8)
    p["runtime"].update(threads=1, log_every=1, device="cpu")
    for dotted, value in updates.items():
        _set(p, dotted, value)
    return p


_set, _DELETE = set_dotted, DELETE  # tests edit parameter dicts by dotted key


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}

