"""The one seed policy: every random choice draws from a generator derived from (base seed, names...).

Deriving rather than chaining makes each random choice independent of how many draws came before,
so a resumed run, a subset of stages or a reordered loop still sees exactly the same numbers.
"""

from __future__ import annotations

import contextlib
import zlib

import numpy as np
import torch


def derive_seed(base: int, *keys) -> int:
    """A 63-bit seed from a base seed and any mix of ints and strings (stable across runs and machines)."""
    words = [int(base)] + [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@contextlib.contextmanager
def torch_seeded(seed: int):
    """Run a block (e.g. model construction, whose init uses the global RNG) under a fixed seed."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
