"""The precision switch of a pass (condense.real_precision, inner_precision, evaluate.train_precision,
test_precision, continual.precision): fp32, bf16 autocast, or `auto`, bf16 only where the device runs it natively.

Without native bf16, oneDNN runs bf16 convolutions on a reference kernel: a 128-channel 3x3 convolution at batch
64 ran at 0.7 GFLOP/s in bf16 against 27.7 in fp32 on an AMD EPYC (Zen 3, AVX2 only) core of this project's CPU
machines, 40x slower, where an AVX-512/AMX core runs bf16 at twice fp32's rate (397 against 207 GFLOP/s).
"""

from __future__ import annotations

import functools
import logging

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether this machine's `device_type` ("cpu", "cuda") runs bf16 convolutions natively: CUDA's own check,
    oneDNN's on the CPU (AVX-512 or AMX on x86)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without that check: the instruction sets it looks for
            return torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX")
    return False


def effective_precision(device: torch.device | str, precision: str) -> str:
    """What a pass with this switch runs in on this device: `auto` resolves to bf16 or fp32; an explicit bf16 is
    kept (its numerics were asked for) with one warning where it is slow."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "auto":
        return "bf16" if native_bf16(kind) else "fp32"
    if precision == "bf16" and not native_bf16(kind):
        _warn_slow_bf16(kind)
    return precision


@functools.cache
def _warn_slow_bf16(device_type: str) -> None:
    log.warning("bf16 was asked for, but this %s has no native bf16: its convolutions run many times slower than "
                "fp32 (40x on an AVX2-only CPU); set the precision switches to auto", device_type)


def autocast(device: torch.device | str, precision: str):
    """The one precision switch of a pass: bf16 autocast, or fp32 as is."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                          enabled=effective_precision(device, precision) == "bf16")
