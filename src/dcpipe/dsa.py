"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021), written from the paper's description.

A strategy names transform groups joined by "_": color (brightness, saturation, contrast), crop (a translation),
cutout, flip, scale and rotate. Every transform is a differentiable function of the images (additions and
products, an affine resampling, a mask), so the matching loss reaches the synthetic pixels through it.

Each call of `draw` picks one group of the strategy at random and draws that group's parameters (the authors'
default "S" mode: one group per batch, not all of them in a row). Siamese use (condensation): one draw per class
and matching step, `draw(strategy, 1, gen)`, applied to the class's real batch and to its synthetic images alike,
so both see the same transformation. The authors' code instead reseeds the same per-image draws for both batches,
which makes only the first images of the two batches agree; the paper's one shared transformation is what is
followed here. Evaluation draws per image (`draw(strategy, n, gen)`): an ordinary random augmentation.

Pixels outside the image after a shift, scale or rotation, and cut-out squares, are 0: the dataset mean of
normalised images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .dsa_strategies import GROUPS, parse_strategy


@dataclass(frozen=True)
class Strengths:
    """How strong each transform is (the authors' ParamDiffAug defaults)."""
    brightness: float = 1.0   # add U(-0.5, 0.5) x brightness
    saturation: float = 2.0   # scale each pixel's distance to its channel mean by U(0, saturation)
    contrast: float = 0.5     # scale each image's distance to its mean by U(contrast, 1 + contrast)
    crop: float = 0.125       # shift by up to this fraction of the side, in whole pixels
    cutout: float = 0.5       # zero a square of this fraction of the side
    flip: float = 0.5         # probability of a horizontal flip
    scale: float = 1.2        # scale x and y independently by U(1/scale, scale)
    rotate: float = 15.0      # rotate by U(-rotate, rotate) degrees


STRENGTHS = Strengths()


def draw(strategy: str, n: int, gen: torch.Generator, side: int = 32, s: Strengths = STRENGTHS) -> dict:
    """One random transformation of `strategy` for n images (n = 1: one shared by a whole batch, any size).
    `side` is the images' height in pixels (the crop and cutout sizes are whole pixels)."""
    groups = parse_strategy(strategy)
    group = groups[int(torch.randint(len(groups), (1,), generator=gen))]

    def u(*shape):
        return torch.rand(n, *shape, generator=gen)

    if group == "color":
        return {"group": group, "brightness": (u() - 0.5) * s.brightness, "saturation": u() * s.saturation,
                "contrast": u() + s.contrast}
    if group == "crop":
        shift = int(side * s.crop + 0.5)
        return {"group": group, "shift": torch.randint(-shift, shift + 1, (n, 2), generator=gen)}
    if group == "cutout":
        return {"group": group, "centre": u(2), "size": max(1, int(side * s.cutout + 0.5))}
    if group == "flip":
        return {"group": group, "flip": u() < s.flip}
    if group == "scale":
        return {"group": group, "scale": u(2) * (s.scale - 1 / s.scale) + 1 / s.scale}
    return {"group": group, "angle": (u() * 2 - 1) * s.rotate * math.pi / 180}


def apply(x: torch.Tensor, d: dict) -> torch.Tensor:
    """x (N, C, H, W) transformed by draw `d` (drawn for N images, or for 1 and shared by all)."""
    dev, n = x.device, len(x)
    g = d["group"]

    def per_image(t, dims=3):  # (n or 1, ...) -> broadcastable against x
        return t.to(dev, x.dtype).reshape(-1, *([1] * dims))

    if g == "color":
        x = x + per_image(d["brightness"])
        x = (x - x.mean(1, keepdim=True)) * per_image(d["saturation"]) + x.mean(1, keepdim=True)
        mean = x.mean((1, 2, 3), keepdim=True)
        return (x - mean) * per_image(d["contrast"]) + mean
    if g == "flip":
        return torch.where(d["flip"].to(dev).reshape(-1, 1, 1, 1), x.flip(3), x)
    if g == "cutout":
        h, w = x.shape[2:]
        cy = (d["centre"][:, 0] * h).floor().to(dev).reshape(-1, 1, 1)
        cx = (d["centre"][:, 1] * w).floor().to(dev).reshape(-1, 1, 1)
        ys = torch.arange(h, device=dev).reshape(1, -1, 1)
        xs = torch.arange(w, device=dev).reshape(1, 1, -1)
        half = d["size"] // 2
        inside = (ys >= cy - half) & (ys < cy - half + d["size"]) & (xs >= cx - half) & (xs < cx - half + d["size"])
        return x * (~inside).to(x.dtype).unsqueeze(1)
    theta = torch.zeros(max(n, 1), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    if g == "crop":  # whole-pixel shifts: the bilinear resampling then copies pixels exactly
        h, w = x.shape[2:]
        theta = theta[:1].repeat(len(d["shift"]), 1, 1)
        theta[:, 0, 2] = -d["shift"][:, 1] * 2 / w
        theta[:, 1, 2] = -d["shift"][:, 0] * 2 / h
    elif g == "scale":
        theta = theta[:1].repeat(len(d["scale"]), 1, 1)
        theta[:, 0, 0], theta[:, 1, 1] = d["scale"][:, 0], d["scale"][:, 1]
    elif g == "rotate":
        a = d["angle"]
        theta = torch.stack([torch.stack([a.cos(), -a.sin(), torch.zeros_like(a)], 1),
                             torch.stack([a.sin(), a.cos(), torch.zeros_like(a)], 1)], 1)
    else:
        raise ValueError(f"unknown DSA group {g!r}; valid: {', '.join(GROUPS)}")
    theta = theta.to(dev, x.dtype).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment(x: torch.Tensor, strategy: str, gen: torch.Generator) -> torch.Tensor:
    """An independent random transformation per image (evaluation with DSA)."""
    return apply(x, draw(strategy, len(x), gen, x.shape[2]))


def siamese(batches: list[torch.Tensor], strategy: str, gen: torch.Generator) -> list[torch.Tensor]:
    """One transformation shared by every batch (a class's real and synthetic images at one matching step)."""
    d = draw(strategy, 1, gen, batches[0].shape[2])
    return [apply(b, d) for b in batches]
