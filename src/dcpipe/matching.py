"""Gradient-matching distances (DC paper eq. 10 and its Table T11 alternatives)."""

from __future__ import annotations

import torch


def _rows(g: torch.Tensor) -> torch.Tensor:
    """One row per output channel / unit: conv (out,in,h,w) -> (out, in*h*w); LayerNorm (C,H,W) -> (C, H*W)."""
    return g.reshape(g.shape[0], -1)


def channel_distance(gs: torch.Tensor, gr: torch.Tensor) -> torch.Tensor:
    """Eq. 10 for one layer: sum over output channels of 1 - cos(gs_i, gr_i).

    1-D parameters (biases, norm scales and shifts) contribute nothing: the paper matches per output node, and a
    bias has one number per node, whose cosine carries no information. The 1e-6 follows the reference code.
    """
    if gs.dim() == 1:
        return gs.new_zeros(())
    a, b = _rows(gs), _rows(gr)
    return (1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-6)).sum()


def match_loss(gw_syn, gw_real, distance: str = "ours") -> torch.Tensor:
    """Distance between two lists of per-parameter gradients (synthetic first), summed over layers.

    ours: eq. 10 (per output channel); mse / cos: the "traditional" distances of DC Table T11, computed over the
    whole flattened gradient vector (biases included), as in the reference code.
    """
    if distance == "ours":
        return sum(channel_distance(s, r) for s, r in zip(gw_syn, gw_real))
    flat_s = torch.cat([g.reshape(-1) for g in gw_syn])
    flat_r = torch.cat([g.reshape(-1) for g in gw_real])
    if distance == "mse":
        return ((flat_s - flat_r) ** 2).sum()
    if distance == "cos":
        return 1 - (flat_s * flat_r).sum() / (flat_s.norm() * flat_r.norm() + 1e-6)
    raise ValueError(f"unknown distance {distance!r}; valid: {', '.join(DISTANCES)}")


DISTANCES = ("ours", "mse", "cos")
