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
