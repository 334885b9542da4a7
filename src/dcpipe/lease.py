"""GPU leases: each job holding `resources: gpu=1` takes a distinct device.

Snakemake limits how many GPU jobs run at once but never says which device a job gets (snakemake issue #281),
so each job locks one of N lock files; the kernel drops an fcntl lock when its process dies, however it dies,
so a killed job can never keep a device. Must run before torch initialises CUDA. No torch import here.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import shutil
import subprocess
import sys
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


# One job holding a lease, as a pipeline stage does, in a process of its own (the guarantee is between processes):
# it says what it got (and, on CUDA, what torch then sees) and keeps it until its stdin closes or it dies.
# tests/test_lease.py and `make gpu-check` (dcpipe.gpu_check.lease_check) run it; torch is imported there, not here.
LEASE_WORKER = """
import json, sys
from dcpipe.lease import GpuLease
lease = GpuLease(sys.argv[1], poll_seconds=0.05)  # held by this name for the process's life: the lock is its file
visible = lease.acquire()
seen = {"visible": visible, "torch_devices": None, "uuid": None}
if sys.argv[2] == "cuda":
    import torch
    seen["torch_devices"] = torch.cuda.device_count()
    if seen["torch_devices"]:
        p = torch.cuda.get_device_properties(0)
        seen["uuid"] = str(getattr(p, "uuid", "") or f"{p.name} pci {getattr(p, 'pci_bus_id', '?')}")
        seen["kernel_ran"] = torch.ones(4, device="cuda").add(1).sum().item() == 8.0
print(json.dumps(seen), flush=True)
sys.stdin.read()
"""


class LeaseJob:
    """A LEASE_WORKER process taking a lease in `lock_dir` with environment `env` (its device count: gpu_count's)."""

    def __init__(self, lock_dir: str | Path, env: dict, cuda: bool = False):
        self.p = subprocess.Popen([sys.executable, "-c", LEASE_WORKER, str(lock_dir), "cuda" if cuda else "cpu"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def seen(self, timeout: float) -> dict | None:
        """What the job reported once it holds a device; None if it has not within `timeout` (or died)."""
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return None
        line = self.p.stdout.readline()
        return json.loads(line) if line.strip() else None

    def finish(self) -> None:
        """Close its stdin: the job exits and its lock goes with it."""
        self.p.stdin.close()
        self.p.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: no cleanup code runs; the kernel drops the lock."""
        self.p.kill()
        self.p.wait(timeout=30)

    def cleanup(self) -> None:
        if self.p.poll() is None:
            self.kill()
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
