"""The NAS search space and its planning (no torch): the 720 ConvNets, the architectures a parameter file searches
(a stratified sample of a (sub)space) and their shards. The plan and the parameter checks read these; dcpipe.nas
trains and ranks the architectures."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .model_names import ACTS, NORMS, POOLS, convnet_name


WIDTHS = (32, 64, 128, 256)
DEPTHS = (1, 2, 3, 4)
FACTORS = {"width": WIDTHS, "depth": DEPTHS, "norm": NORMS, "act": ACTS, "pool": POOLS}
EARLY_STOPPING = "early_stopping"  # the proxy that is not a set: the whole training set, few steps


@dataclass(frozen=True)
class Arch:
    width: int
    depth: int
    norm: str
    act: str
    pool: str

    @property
    def name(self) -> str:
        return convnet_name(self.width, self.depth, self.norm, self.act, self.pool)


# The search space, in a fixed order: an architecture's index is its identity in every artifact.
SPACE: tuple[Arch, ...] = tuple(Arch(*t) for t in itertools.product(*FACTORS.values()))


def subspace(widths=WIDTHS) -> dict[str, tuple]:
    """The factors' levels, with the widths restricted (the CPU default searches the narrow half)."""
    unknown = sorted(set(widths) - set(WIDTHS))
    if unknown:
        raise ValueError(f"widths {unknown} are not in the search space; valid: {', '.join(map(str, WIDTHS))}")
    return {**FACTORS, "width": tuple(w for w in WIDTHS if w in widths)}


def stratified_sample(n: int, seed: int, factors: dict[str, tuple] = FACTORS) -> list[int]:
    """n distinct architectures of the (sub)space `factors` (sorted space indices) in which every level of every
    factor appears equally often, to within one (each factor's levels are dealt out round-robin, then shuffled
    independently and zipped together; a draw with a duplicate architecture is redrawn)."""
    size = math.prod(len(v) for v in factors.values())
    if not 1 <= n <= size:
        raise ValueError(f"sample size {n} is not in 1..{size}")
    index = {a: i for i, a in enumerate(SPACE)}
    if n == size:
        return sorted(index[Arch(*t)] for t in itertools.product(*factors.values()))
    if n > size // 2:  # the complement of a balanced sample is balanced (the whole (sub)space is)
        every = {index[Arch(*t)] for t in itertools.product(*factors.values())}
        return sorted(every - set(stratified_sample(size - n, seed, factors)))
    rng = np.random.default_rng(seed)
    columns = []
    for levels in factors.values():
        extra = n % len(levels)  # which levels get one more copy: random, not the first ones
        col = [levels[i % len(levels)] for i in range(n - extra)] + [levels[c] for c in
                                                                     rng.choice(len(levels), extra, replace=False)]
        columns.append([col[i] for i in rng.permutation(n)])
    # Repair duplicates by swapping one factor's values between two rows: swaps keep every factor's counts.
    for _ in range(100_000):
        rows = list(zip(*columns))
        seen, dup = set(), None
        for i, r in enumerate(rows):
            if r in seen:
                dup = i
                break
            seen.add(r)
        if dup is None:
            return sorted(index[Arch(*r)] for r in rows)
        j, f = int(rng.integers(n)), int(rng.integers(len(columns)))
        before = len(set(rows))
        columns[f][dup], columns[f][j] = columns[f][j], columns[f][dup]
        if len(set(zip(*columns))) < before:
            columns[f][dup], columns[f][j] = columns[f][j], columns[f][dup]
    raise RuntimeError(f"no duplicate-free stratified sample of {n} found")  # pragma: no cover


def shard(indices: list[int], k: int, shards: int) -> list[int]:
    """Shard k of `shards`: every shards-th candidate (strided, so cheap and costly architectures mix)."""
    return indices[k::shards]
