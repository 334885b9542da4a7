"""Gradient-matching distances: the DC paper's eq. 10, the follow-up's angle + magnitude family (its section
4.3), and the "traditional" whole-vector distances of DC Table T11.

Per-channel distances compare one row per output channel / unit (conv (out,in,h,w) -> (out, in*h*w), LayerNorm
(C,H,W) -> (C, H*W)) and sum over rows and layers. 1-D parameters (biases, norm scales and shifts) contribute
nothing: both papers match per output node, and a bias has one number per node.
"""

from __future__ import annotations

import torch

from .distances import DISTANCES, is_distance, parse_distance  # noqa: F401 (the names, read without torch)


def _rows(g: torch.Tensor) -> torch.Tensor:
    return g.reshape(g.shape[0], -1)


# per-row terms of the follow-up paper (a = synthetic, b = real rows)
def _d1(a, b):  # 1 - cos: the angle only (= DC eq. 10; the 1e-6 follows the reference code)
    return 1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-6)


def _d2(a, b):  # Euclidean distance
    return (a - b).norm(dim=1)


def _d3(a, b):  # sum of squared errors
    return ((a - b) ** 2).sum(1)


def _d4(a, b):  # mean squared error
    return ((a - b) ** 2).mean(1)


TERMS = {"d1": _d1, "d2": _d2, "d3": _d3, "d4": _d4}  # the terms of dcpipe.distances' names
def channel_distance(gs: torch.Tensor, gr: torch.Tensor, terms=((1.0, "d1"),)) -> torch.Tensor:
    """One layer: sum over output channels of the weighted per-row terms (default: DC eq. 10)."""
    if gs.dim() == 1:
        return gs.new_zeros(())
    a, b = _rows(gs), _rows(gr)
    return sum(w * TERMS[t](a, b) for w, t in terms).sum()


def match_loss(gw_syn, gw_real, distance: str = "ours") -> torch.Tensor:
    """Distance between two lists of per-parameter gradients (synthetic first), summed over layers.

    mse / cos: the "traditional" distances of DC Table T11, computed over the whole flattened gradient vector
    (biases included), as in the reference code.
    """
    if distance in ("mse", "cos"):
        flat_s = torch.cat([g.reshape(-1) for g in gw_syn])
        flat_r = torch.cat([g.reshape(-1) for g in gw_real])
        if distance == "mse":
            return ((flat_s - flat_r) ** 2).sum()
        return 1 - (flat_s * flat_r).sum() / (flat_s.norm() * flat_r.norm() + 1e-6)
    terms = parse_distance(distance)
    return sum(channel_distance(s, r, terms) for s, r in zip(gw_syn, gw_real))
