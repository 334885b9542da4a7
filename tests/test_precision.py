"""The precision switches (dcpipe.precision): `auto` is bf16 only where the device runs it natively, because
bf16 without native support is many times slower than fp32 (40x for a convolution on an AVX2-only CPU)."""

import logging

import pytest
import torch

from dcpipe import precision
from dcpipe.io import provenance
from dcpipe.precision import autocast, effective_precision


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_exactly_where_the_device_has_native_bf16(monkeypatch, native):
    monkeypatch.setattr(precision, "native_bf16", lambda kind: native)
    assert effective_precision("cpu", "auto") == ("bf16" if native else "fp32")
    conv = torch.nn.Conv2d(1, 2, 3)
    with autocast("cpu", "auto"):
        out = conv(torch.randn(1, 1, 5, 5))
    assert out.dtype == (torch.bfloat16 if native else torch.float32)


def test_fp32_is_fp32_and_an_explicit_bf16_is_kept_with_one_warning_where_it_is_slow(monkeypatch, caplog):
    monkeypatch.setattr(precision, "native_bf16", lambda kind: False)
    precision._warn_slow_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="dcpipe.precision"):
        assert effective_precision("cpu", "fp32") == "fp32"
        assert not caplog.records
        assert [effective_precision("cpu", "bf16") for _ in range(3)] == ["bf16"] * 3
    assert len(caplog.records) == 1 and "no native bf16" in caplog.text and "auto" in caplog.text


def test_an_unknown_precision_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown precision 'fp16'; valid: fp32, bf16, auto"):
        effective_precision("cpu", "fp16")


def test_every_artifact_records_whether_its_auto_switches_ran_in_bf16():
    kind = "cuda" if torch.cuda.is_available() else "cpu"
    assert provenance()["bf16_native"] is precision.native_bf16(kind)


def test_under_cpu_bf16_a_one_channel_first_conv_runs_in_fp32_and_equals_the_fp32_conv():
    """oneDNN's bf16 weight gradient for one input channel is slower than fp32 (models.one_channel_conv_fp32), so the
    ConvNet keeps a gray image's first conv in fp32 under autocast: exactly the fp32 conv, values and gradients."""
    from dcpipe.models import one_channel_conv_fp32
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    x = torch.randn(2, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x).dtype == torch.bfloat16  # what autocast alone would do
        out = one_channel_conv_fp32(conv, x)
    assert out.dtype == torch.float32
    ref = conv(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert all(torch.equal(a, e) for a, e in zip(torch.autograd.grad(out.sum(), conv.parameters()),
                                                 torch.autograd.grad(ref.sum(), conv.parameters())))
    from dcpipe import fused
    before = fused.enabled()
    fused.set_enabled(False)  # the unfused path: the fused first block (tests/test_fused.py) never calls the conv module
    seen = {}
    try:
        _first_conv_dtypes(seen)
    finally:
        fused.set_enabled(before)
    assert seen == {1: torch.float32, 3: torch.bfloat16}  # colour input keeps bf16: it is faster there


def _first_conv_dtypes(seen):
    from dcpipe.models import build_model
    for channels in (1, 3):
        net = build_model("ConvNet", channels=channels, num_classes=10, im_size=(28, 28) if channels == 1 else (32, 32))
        first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        first.register_forward_hook(lambda m, i, o, c=channels: seen.__setitem__(c, o.dtype))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = net(torch.randn(2, channels, *((28, 28) if channels == 1 else (32, 32))))
        logits.float().sum().backward()  # and the mixed-precision chain still backpropagates
        assert first.weight.grad is not None and torch.isfinite(first.weight.grad).all()
