"""Process set-up shared by every stage: logging, threads, device, progress."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import time

import torch
from tqdm import tqdm

from .errors import ArtifactError, DataError, MethodError, NonFiniteError, OutputError, ParamsError
from .io import unwritable_reason

# The fused-chain switch (runtime.fused), read by dcpipe.fused's ops at each call: set here, at set-up, so that a
# stage that builds no network starts without importing the kernels' module.
_fused = False


def set_fused(on: bool) -> None:
    global _fused
    _fused = bool(on)


def fused_enabled() -> bool:
    return _fused


def keep_freed_memory(keep: bool = True) -> bool:
    """Stop glibc from returning big freed blocks to the kernel. Every activation of a conv layer at batch 256
    is >32 MB, so glibc serves it with mmap and unmaps it on free; the next step page-faults the same memory
    in again. Measured on this CPU (ConvNet fwd+bwd, batch 256, 1 thread): 1.20 s -> 0.61 s per step, the same
    as preloading tcmalloc (reports/records/bench.json, "allocator"). Costs resident memory that the process reuses anyway.
    keep=False restores glibc's defaults (the benchmark's baseline)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # <malloc.h>
    return bool(libc.mallopt(M_MMAP_MAX, 0 if keep else 65536)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1 if keep else 128 * 1024))


def setup(threads: int = 1, level=logging.INFO, fused: bool = True):
    """Every process's start: allocator, logging, torch threads, and the fused-chain switch (runtime.fused)."""
    keep_freed_memory()  # before torch allocates anything big
    set_fused(fused)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process


CUDA_UNAVAILABLE = ("runtime.device is 'cuda' but torch.cuda.is_available() is False on this machine; "
                    "use 'auto' or 'cpu'")


# A Snakemake run stops at its start (onstart) where runtime.device is cuda and this machine has none. The way out
# where the jobs get their GPU elsewhere (a cluster job): run snakemake on the GPU host, or skip the start hook.
CUDA_ELSEWHERE = ("if the GPU jobs run on another host that has CUDA (a cluster job), run snakemake there or pass "
                  "--no-hooks (each GPU job still checks at its start)")


def device_problem(choice: str) -> str | None:
    """Why runtime.device cannot be honoured on this machine (None when it can)."""
    if choice != "cuda":
        return None
    return None if torch.cuda.is_available() else CUDA_UNAVAILABLE


def pick_device(choice: str = "auto"):
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def reset_peak_memory(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device) -> dict:
    """Peak memory in MB, and what was measured. CUDA: the most torch allocated on the device since
    reset_peak_memory (the tensors of the work itself, the quantity a GPU table such as DC T15 compares). CPU:
    the process's peak resident set since it started (getrusage cannot be reset), so it includes the loaded
    dataset, torch and Python."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return {"mb": torch.cuda.max_memory_allocated(dev) / 2**20, "measure": "CUDA peak allocated by torch"}
    import resource  # POSIX only: imported where it is needed
    return {"mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports kB
            "measure": "process peak resident set (includes the loaded dataset)"}


class Progress:
    """A tqdm bar on a terminal; elsewhere (Snakemake/DVC logs) one plain log line every `log_every` steps."""

    def __init__(self, total: int, desc: str, log_every: int = 10, logger=None):
        self.bar = tqdm(total=total, desc=desc, disable=None, leave=False)
        self.total, self.desc, self.every = total, desc, log_every
        self.log = logger or logging.getLogger("dcpipe")
        self.t0 = time.perf_counter()

    def __call__(self, step: int, value: float | None = None):
        self.bar.update(1)
        if value is not None:
            self.bar.set_postfix(value=f"{value:.4g}")
        if self.bar.disable and ((step + 1) % self.every == 0 or step + 1 == self.total):
            el = time.perf_counter() - self.t0
            self.log.info("%s %d/%d value=%s elapsed=%.1fs", self.desc, step + 1, self.total,
                          "-" if value is None else f"{value:.4g}", el)

    def close(self):
        self.bar.close()


@contextlib.contextmanager
def stage_errors():
    """Wrap a stage script's body: an error the user can fix (bad params, missing or corrupt data or artifact,
    a diverged run, an output that cannot be written) ends the process with `error: <message>` on stderr and exit
    status 2, not a traceback. A full or read-only file system met by a write outside io.atomic_path is one such
    line too, naming the path. Anything else is a bug and keeps its traceback (so no
    bare ValueError/RuntimeError here)."""
    try:
        yield
    except (ParamsError, DataError, ArtifactError, NonFiniteError, OutputError, MethodError) as e:
        _fail(str(e))
    except Exception as e:
        reason = unwritable_reason(e, (getattr(e, "filename", None),))
        if reason not in WRITE_ONLY_FAULTS:  # permission denied may be a read's: a bug's traceback stays
            raise
        where = getattr(e, "filename", None) or "an output"
        _fail(f"{where}: could not be written: {reason}; free space or make the folder writable, then rerun the job "
              f"(files already written, checkpoints included, are kept)")


WRITE_ONLY_FAULTS = ("no space left on device", "disk quota exceeded", "read-only file system")


def _fail(message: str):
    logging.getLogger("dcpipe").debug("stage failed", exc_info=True)
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None
