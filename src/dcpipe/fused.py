"""The fused instance norm -> ReLU -> 2x2 average pool of the ConvNet block (a memory-bound chain).

On this CPU the chain took ~40% of a ConvNet training step in eager PyTorch (bf16 autocast: its average pool alone
~28%), each op reading and writing the full-size activation. csrc/norm_relu_avgpool.cpp does forward and backward
in one pass per (image, channel) plane. It is built on first use by torch's C++ extension loader (g++, ~25 s here;
cached in the Python environment (build_directory), so later jobs load it in well under a second).

The first block of a gray-image ConvNet whose input needs no gradient (the real images of gradient matching, and
the fixed images a network is trained or tested on) runs conv -> norm -> ReLU -> pool as one op (conv_fusable):
the 134 MB fp32 conv output of a batch of 256 is never written, and the conv's weight gradient comes straight from
each plane's gradient. On a Zen 4 core that block went from 46 + 82 ms (forward + backward, oneDNN conv and the
fused chain) to 19 + 42 ms, and the IPC-1 real pass from 487 to 407 ms.

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

# The process-wide switch (runtime.fused) lives in runtime, where set-up sets it, so that the start of a stage that
# builds no network (download, prepare_data) imports neither this module nor its C++ source. Its names here are
# fused.enabled and fused.set_enabled (the benches and tests flip it).
from .runtime import fused_enabled as enabled, set_fused as set_enabled  # noqa: F401

log = logging.getLogger(__name__)

_EXTENSION = None  # the loaded module, or False once building it failed


def build_flags() -> list[str]:
    """-march=x86-64-v3 (AVX2, FMA) where torch's own dispatch says the CPU has AVX2 or AVX-512: the op's
    loops then run eight floats wide with fused multiply-adds (the first block's conv op 2x faster on a Zen 4
    core); elsewhere the portable x86-64 baseline. x86-64-v4 (AVX-512) was slower here."""
    flags = ["-O3", "-fopenmp-simd"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags.append("-march=x86-64-v3")
    return flags


def build_directory() -> Path:
    """Where the op is built and cached: $TORCH_EXTENSIONS_DIR if set, else inside the Python environment (one
    build per venv, so two checkouts' environments never rebuild over each other's copy). The directory is named
    by the CPU capability the flags were chosen for, so a venv shared by unlike nodes never loads a build with
    instructions its CPU lacks."""
    root = Path(os.environ["TORCH_EXTENSIONS_DIR"]) if os.environ.get("TORCH_EXTENSIONS_DIR") else (
        Path(sys.prefix) / "var" / "dcpipe-torch-extensions")
    path = root / f"dcpipe_norm_relu_avgpool_{torch.backends.cpu.get_cpu_capability().lower()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cpp_extension_load():
    """torch's extension builder. Its import warns "No CUDA runtime is found, using CUDA_HOME=..." on a machine
    with a CUDA toolkit and no GPU, in every job log, though a CPU op needs no CUDA: that warning is kept quiet."""
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        from torch.utils.cpp_extension import load  # imports setuptools: only in processes that fuse
    finally:
        quiet.setLevel(level)
    return load


def extension():
    """The compiled op, built on first use (None when it cannot be built here)."""
    global _EXTENSION
    if _EXTENSION is None:
        try:
            load = _cpp_extension_load()
            src = Path(__file__).with_name("csrc") / "norm_relu_avgpool.cpp"
            _EXTENSION = load("dcpipe_norm_relu_avgpool", [str(src)], extra_cflags=build_flags(),
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


def eager_conv_norm_relu_avgpool(x, conv_weight, conv_bias, padding: int, weight, bias, eps: float = 1e-5):
    """The reference first block, all in fp32: Conv2d (stride 1) -> GroupNorm(C, C) -> ReLU -> AvgPool2d(2, 2)."""
    with torch.autocast(x.device.type, enabled=False):
        return eager_norm_relu_avgpool(F.conv2d(x.float(), conv_weight, conv_bias, padding=padding), weight, bias, eps)


class _ConvNormReluAvgPool(torch.autograd.Function):
    """The first block on an input that needs no gradient: only the four parameters get one."""

    @staticmethod
    def forward(ctx, x, conv_weight, conv_bias, padding, weight, bias, eps):
        xp = F.pad(x.float(), (padding,) * 4).contiguous()
        params = [t.contiguous() for t in (conv_weight, conv_bias, weight, bias)]
        out, mean, rstd = extension().conv_forward(xp, *params, eps)
        ctx.save_for_backward(x, xp, *params, mean, rstd)
        ctx.padding, ctx.eps = padding, eps
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, xp, conv_weight, conv_bias, weight, bias, mean, rstd = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward, from the eager chain
            with torch.enable_grad():
                params = [t if t.requires_grad else t.detach().requires_grad_()
                          for t in (conv_weight, conv_bias, weight, bias)]
                out = eager_conv_norm_relu_avgpool(x, params[0], params[1], ctx.padding, *params[2:], ctx.eps)
                grads = torch.autograd.grad(out, params, grad_out, create_graph=True)
        else:
            grads = extension().conv_backward(grad_out, xp, conv_weight, conv_bias, weight, bias, mean, rstd)
        return None, grads[0], grads[1], None, grads[2], grads[3], None


def conv_fusable(x, conv, weight) -> bool:
    """Whether a block's conv -> GroupNorm(C, C) -> ReLU -> 2x2 average pool on x can run as one fused op: a
    gray-image first block (Cin = 1, where fp32 is also what models.one_channel_conv_fp32 runs under autocast, so
    the numbers are those of the eager chain) whose input needs no gradient, with a stride-1 square conv."""
    if not (enabled() and x.device.type == "cpu" and x.dim() == 4 and x.dtype == torch.float32 and x.shape[1] == 1
            and not x.requires_grad and conv.bias is not None and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.groups == 1 and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
            and conv.padding[0] == conv.padding[1] and conv.kernel_size[0] == conv.kernel_size[1]
            and conv.weight.dtype == torch.float32 and weight.dtype == torch.float32):
        return False
    out = [x.shape[d] + 2 * conv.padding[0] - conv.kernel_size[0] + 1 for d in (2, 3)]
    return (all(o > 0 and o % 2 == 0 for o in out)
            and not any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in (x, conv.weight, weight))
            and extension() is not None)


def conv_norm_relu_avgpool(x, conv, weight, bias, eps: float = 1e-5):
    """A first block, conv -> GroupNorm(C, C) -> ReLU -> AvgPool2d(2, 2), fused (conv_fusable says where)."""
    return _ConvNormReluAvgPool.apply(x, conv.weight, conv.bias, conv.padding[0], weight, bias, eps)


def _fusable(x, weight) -> bool:
    return (enabled() and x.device.type == "cpu" and x.dim() == 4 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and x.dtype in (torch.float32, torch.bfloat16) and weight.dtype == torch.float32
            and not torch._C._functorch.is_functorch_wrapped_tensor(x)
            and not torch._C._functorch.is_functorch_wrapped_tensor(weight) and extension() is not None)


def norm_relu_avgpool(x, weight, bias, eps: float = 1e-5):
    """GroupNorm(C, C) -> ReLU -> AvgPool2d(2, 2) of x (N, C, H, W): fused where it can be, else eager."""
    if _fusable(x, weight):
        return _NormReluAvgPool.apply(x, weight, bias, eps)
    return eager_norm_relu_avgpool(x, weight, bias, eps)
