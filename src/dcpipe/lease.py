"""GPU leases: each job holding `resources: gpu=1` takes a distinct device.

Snakemake limits how many GPU jobs run at once but never says which device a job gets (snakemake issue #281),
so each job locks one of N lock files; the kernel drops an fcntl lock when its process dies, however it dies,
so a killed job can never keep a device. Must run before torch initialises CUDA. No torch import here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path


def gpu_count() -> int:
    """Visible GPUs, counted without initialising CUDA. DCPIPE_FAKE_GPUS overrides (tests)."""
    if "DCPIPE_FAKE_GPUS" in os.environ:
        return int(os.environ["DCPIPE_FAKE_GPUS"])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


class GpuLease:
    """Hold one device slot for the life of the process (or until release())."""

    def __init__(self, lock_dir: str | Path = ".dcpipe/gpu-locks", n_devices: int | None = None,
                 poll_seconds: float = 2.0):
        self.lock_dir, self.n, self.poll = Path(lock_dir), n_devices, poll_seconds
        self.device: int | None = None
        self._fh = None

    def acquire(self) -> str | None:
        """Set CUDA_VISIBLE_DEVICES to a free slot and return it; None on a CPU machine.
        A value a cluster scheduler (or the user) already set is kept: the scheduler has done the leasing."""
        if "CUDA_VISIBLE_DEVICES" in os.environ:  # "" (hide every GPU) counts as a choice too
            return os.environ["CUDA_VISIBLE_DEVICES"]
        n = gpu_count() if self.n is None else self.n
        if n == 0:
            return None
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        while True:
            for i in range(n):
                fh = open(self.lock_dir / f"gpu{i}.lock", "a+")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    continue
                self._fh, self.device = fh, i
                os.environ["CUDA_VISIBLE_DEVICES"] = str(i)
                return str(i)
            time.sleep(self.poll)  # more jobs than devices (e.g. --resources gpu above the count): wait

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh, self.device = None, None
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
