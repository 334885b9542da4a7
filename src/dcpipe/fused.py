"""The fused instance norm -> ReLU -> 2x2 average pool of the ConvNet block (the speed issue's memory-bound chain).

On this CPU the chain took ~40% of a ConvNet training step in eager PyTorch (bf16 autocast: its average pool alone
~28%), each op reading and writing the full-size activation. csrc/norm_relu_avgpool.cpp does forward and backward
in one pass per (image, channel) plane. It is built on first use by torch's C++ extension loader (g++, ~25 s here;
cached in the Python environment (build_directory), so later jobs load it in well under a second).

Where it is not used, the eager chain runs, with the same numbers to float rounding: the switch is off
(runtime.fused), the tensor is on a GPU, under a torch.func transform (vmap/grad), the block is not instance
norm/ReLU/avg pool, or the extension cannot be built (logged once). A backward that must itself be differentiable
(create_graph=True: the synthetic-image pass of gradient matching) recomputes the eager chain, so double
backward is exact.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

_ENABLED = False
_EXTENSION = None  # the loaded module, or False once building it failed


def set_enabled(on: bool) -> None:
    """The process-wide switch (runtime.fused), set by runtime.setup."""
    global _ENABLED
    _ENABLED = bool(on)


def enabled() -> bool:
    return _ENABLED


def build_directory() -> Path:
    """Where the op is built and cached: $TORCH_EXTENSIONS_DIR if set, else inside the Python environment (one
    build per venv, so two checkouts' environments never rebuild over each other's copy)."""
    root = Path(os.environ["TORCH_EXTENSIONS_DIR"]) if os.environ.get("TORCH_EXTENSIONS_DIR") else (
        Path(sys.prefix) / "var" / "dcpipe-torch-extensions")
    path = root / "dcpipe_norm_relu_avgpool"
    path.mkdir(parents=True, exist_ok=True)
    return path


def extension():
    """The compiled op, built on first use (None when it cannot be built here)."""
    global _EXTENSION
    if _EXTENSION is None:
        try:
            from torch.utils.cpp_extension import load  # imports setuptools: only in processes that fuse
            src = Path(__file__).with_name("csrc") / "norm_relu_avgpool.cpp"
            _EXTENSION = load("dcpipe_norm_relu_avgpool", [str(src)], extra_cflags=["-O3", "-fopenmp-simd"],
                              build_directory=str(build_directory()), verbose=False)
        except Exception as e:  # no compiler, headers or ninja: the eager chain, said once
            log.warning("fused norm-ReLU-pool unavailable (%s: %s); using the eager chain", type(e).__name__,
                        str(e)[-400:])
            _EXTENSION = False
    return _EXTENSION or None


def eager_norm_relu_avgpool(x, weight, bias, eps: float = 1e-5):
    """The reference chain: GroupNorm(C, C) -> ReLU -> AvgPool2d(2, 2)."""
    return F.avg_pool2d(F.relu(F.group_norm(x, x.shape[1], weight, bias, eps)), 2, 2)


class _NormReluAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        out, mean, rstd = extension().forward(x.contiguous(), weight.contiguous(), bias.contiguous(), eps)
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward, from the eager chain
            with torch.enable_grad():
                inputs = [t if t.requires_grad else t.detach().requires_grad_() for t in (x, weight, bias)]
                out = eager_norm_relu_avgpool(*inputs, ctx.eps)
                grads = torch.autograd.grad(out, inputs, grad_out, create_graph=True)
            return (*grads, None)
        dx, dweight, dbias = extension().backward(grad_out, x.contiguous(), weight.contiguous(), bias.contiguous(),
                                                  mean, rstd)
        return dx, dweight, dbias, None


def _fusable(x, weight) -> bool:
    return (_ENABLED and x.device.type == "cpu" and x.dim() == 4 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and x.dtype in (torch.float32, torch.bfloat16) and weight.dtype == torch.float32
            and not torch._C._functorch.is_functorch_wrapped_tensor(x)
            and not torch._C._functorch.is_functorch_wrapped_tensor(weight) and extension() is not None)


def norm_relu_avgpool(x, weight, bias, eps: float = 1e-5):
    """GroupNorm(C, C) -> ReLU -> AvgPool2d(2, 2) of x (N, C, H, W): fused where it can be, else eager."""
    if _fusable(x, weight):
        return _NormReluAvgPool.apply(x, weight, bias, eps)
    return eager_norm_relu_avgpool(x, weight, bias, eps)
