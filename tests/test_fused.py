"""The fused instance norm -> ReLU -> 2x2 average pool (dcpipe.fused, a memory-bound chain) is the
eager chain, to float rounding: values, gradients, double backward, inside the ConvNet, and off when switched off.
So is the fused first block (conv -> norm -> ReLU -> pool) on gray images that need no gradient."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from dcpipe import fused
from dcpipe.models import build_model
from dcpipe.precision import autocast
from dcpipe.train import TrainConfig, train_model


@pytest.fixture
def on():
    before = fused.enabled()
    fused.set_enabled(True)
    assert fused.extension() is not None, "the C++ extension must build here (g++ and ninja are in the image)"
    yield
    fused.set_enabled(before)


def inputs(dtype=torch.float32, n=4, c=6, hw=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hw, hw, generator=g).to(dtype).requires_grad_()
    w = (torch.rand(c, generator=g) + 0.5).requires_grad_()
    b = (torch.randn(c, generator=g) * 0.5).requires_grad_()
    go = torch.randn(n, c, hw // 2, hw // 2, generator=g).to(dtype)
    return x, w, b, go


def test_the_fused_op_equals_the_eager_chain_in_values_and_gradients(on):
    x, w, b, go = inputs()
    out = fused.norm_relu_avgpool(x, w, b)
    assert out.grad_fn is not None and "NormReluAvgPool" in type(out.grad_fn).__name__
    ref = fused.eager_norm_relu_avgpool(x, w, b)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for a, e in zip(torch.autograd.grad(out, (x, w, b), go), torch.autograd.grad(ref, (x, w, b), go)):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)


def test_in_bf16_it_rounds_once_where_the_eager_chain_rounds_at_each_op(on):
    x, w, b, go = inputs(torch.bfloat16)
    out = fused.norm_relu_avgpool(x, w, b)
    assert out.dtype == torch.bfloat16
    ref = fused.eager_norm_relu_avgpool(x.float(), w, b)  # the same inputs, every op in fp32
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)
    dx, dw, db = torch.autograd.grad(out, (x, w, b), go)
    ex, ew, eb = torch.autograd.grad(ref, (x, w, b), go.float())
    assert dx.dtype == torch.bfloat16 and dw.dtype == torch.float32
    torch.testing.assert_close(dx.float(), ex.float(), rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(dw, ew, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(db, eb, rtol=2e-2, atol=2e-2)


def test_double_backward_is_the_eager_one(on):
    """Gradient matching differentiates the synthetic gradients (create_graph=True): through the fused op too."""
    x, w, b, go = inputs()

    def second_order(chain):
        gw, = torch.autograd.grad((chain(x, w, b) * go).sum(), (w,), create_graph=True)
        return torch.autograd.grad((gw ** 2).sum(), (x, b))

    for a, e in zip(second_order(fused.norm_relu_avgpool), second_order(fused.eager_norm_relu_avgpool)):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)


def test_the_convnet_with_the_fused_chain_is_the_eager_convnet(on):
    x = torch.randn(5, 1, 28, 28)
    y = torch.arange(5)
    torch.manual_seed(0)
    net = build_model("ConvNet", 1, 10, (28, 28))
    outs = {}
    for mode in (True, False):
        fused.set_enabled(mode)
        net.zero_grad()
        logits = net(x)
        F.cross_entropy(logits, y).backward()
        outs[mode] = (logits.detach(), [p.grad.clone() for p in net.parameters()])
    torch.testing.assert_close(outs[True][0], outs[False][0], rtol=1e-4, atol=1e-5)
    for a, e in zip(outs[True][1], outs[False][1]):
        torch.testing.assert_close(a, e, rtol=1e-3, atol=1e-5)


def first_block(hw=28, padding=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(1, 6, 3, padding=padding)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        conv.bias.copy_(torch.randn(6, generator=g))
    w = (torch.rand(6, generator=g) + 0.5).requires_grad_()
    b = (torch.randn(6, generator=g) * 0.5).requires_grad_()
    x = torch.randn(4, 1, hw, hw, generator=g)
    return x, conv, w, b


@pytest.mark.parametrize("hw,padding", [(28, 3), (8, 1), (10, 0)])
def test_the_fused_first_block_equals_the_eager_conv_norm_relu_pool_in_values_and_parameter_gradients(on, hw, padding):
    x, conv, w, b = first_block(hw, padding)
    assert fused.conv_fusable(x, conv, w)
    out = fused.conv_norm_relu_avgpool(x, conv, w, b)
    assert "ConvNormReluAvgPool" in type(out.grad_fn).__name__
    ref = fused.eager_conv_norm_relu_avgpool(x, conv.weight, conv.bias, padding, w, b)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    go = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    params = (conv.weight, conv.bias, w, b)
    got, want = torch.autograd.grad(out, params, go), torch.autograd.grad(ref, params, go)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)
    # the norm takes away the conv bias's shift of the whole plane: its gradient is 0 (eagerly, 0 to rounding)
    assert torch.equal(got[1], torch.zeros(6))


def test_the_fused_first_block_under_bf16_autocast_is_the_fp32_block(on):
    """Under CPU bf16 a one-channel first conv runs in fp32 (models.one_channel_conv_fp32), and so does the block."""
    x, conv, w, b = first_block()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fused.conv_norm_relu_avgpool(x, conv, w, b)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, fused.eager_conv_norm_relu_avgpool(x, conv.weight, conv.bias, 3, w, b),
                               rtol=1e-5, atol=1e-5)


def test_the_fused_first_block_double_backward_is_the_eager_one(on):
    """The inner training differentiates through nothing, but a create_graph backward must still be exact."""
    x, conv, w, b = first_block(8, 1)

    def second_order(block):
        gw, = torch.autograd.grad((block() * 1.5).sum(), (conv.weight,), create_graph=True)
        return torch.autograd.grad((gw ** 2).sum(), (w, b))

    got = second_order(lambda: fused.conv_norm_relu_avgpool(x, conv, w, b))
    want = second_order(lambda: fused.eager_conv_norm_relu_avgpool(x, conv.weight, conv.bias, 1, w, b))
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)


def test_the_first_block_is_fused_only_where_its_input_needs_no_gradient_and_is_gray(on):
    """The synthetic images' pass needs the input gradient: it runs the eager chain, as does colour input (oneDNN's
    bf16 conv is faster there) and any other conv shape."""
    x, conv, w, b = first_block()
    assert fused.conv_fusable(x, conv, w)
    assert not fused.conv_fusable(x.clone().requires_grad_(), conv, w)
    assert not fused.conv_fusable(torch.randn(4, 3, 28, 28), torch.nn.Conv2d(3, 6, 3, padding=3), w)
    assert not fused.conv_fusable(x, torch.nn.Conv2d(1, 6, 3, padding=3, stride=2), w)
    assert not fused.conv_fusable(x, torch.nn.Conv2d(1, 6, 3, padding=3, dilation=2), w)
    assert not fused.conv_fusable(torch.randn(4, 1, 27, 27), conv, w)  # an odd output: the pool would drop a row
    fused.set_enabled(False)
    assert not fused.conv_fusable(x, conv, w)


def test_switched_off_or_under_vmap_the_eager_chain_runs(on):
    x, w, b, _ = inputs()
    fused.set_enabled(False)
    assert "NormReluAvgPool" not in type(fused.norm_relu_avgpool(x, w, b).grad_fn).__name__
    fused.set_enabled(True)
    # a stack of models (train.train_stacked's vmap(grad(functional_call))) gives each model's own gradients
    torch.manual_seed(0)
    nets = [build_model("ConvNet", 1, 10, (28, 28)) for _ in range(2)]
    params, buffers = stack_module_state(nets)
    xb, yb = torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2])
    loss = lambda p, bu: F.cross_entropy(functional_call(nets[0], (p, bu), (xb,)), yb)  # noqa: E731
    stacked = vmap(grad(loss))(params, buffers)
    for m, net in enumerate(nets):
        F.cross_entropy(net(xb), yb).backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(stacked[name][m], p.grad, rtol=1e-3, atol=1e-5)


def test_blocks_other_than_instance_norm_relu_avg_pool_run_eager(on):
    torch.manual_seed(0)
    net = build_model("ConvNetAL", 1, 10, (28, 28))  # LeakyReLU: not the fused chain
    out = net(torch.randn(2, 1, 28, 28))
    assert torch.isfinite(out).all()
    names = set()
    stack = [out.grad_fn]
    while stack:
        f = stack.pop()
        if f is not None and type(f).__name__ not in names:
            names.add(type(f).__name__)
            stack += [g for g, _ in f.next_functions]
    assert not any("NormReluAvgPool" in n for n in names)


def test_train_precision_bf16_autocasts_the_training_step_and_fp32_does_not():
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    seen = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        net = build_model("ConvNet", 1, 10, (28, 28))
        cfg = TrainConfig(epochs=1, batch=8, train_precision=precision)
        train_model(net, x, y, cfg, torch.Generator().manual_seed(0),
                    observe=lambda idx, logits, p=precision: seen.setdefault(p, logits.dtype))
        assert all(p.dtype == torch.float32 for p in net.parameters())  # weights and SGD stay fp32
    assert seen == {"fp32": torch.float32, "bf16": torch.bfloat16}


def test_an_unknown_precision_is_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match="valid: fp32, bf16"):
        autocast(torch.device("cpu"), "fp16")


def test_building_the_op_on_a_machine_without_a_gpu_says_nothing_about_cuda(tmp_path):
    """A CUDA toolkit (CUDA_HOME) and no GPU: torch's extension builder would warn "No CUDA runtime is found" in
    every job log and `dcpipe score`, though this CPU op needs no CUDA."""
    env = {**os.environ, "CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    code = ("import logging, sys; logging.basicConfig(stream=sys.stderr)\n"
            "from dcpipe import fused\nprint(fused.extension() is not None)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True\n"  # built (or loaded from its cache) on this machine
    assert "CUDA" not in r.stderr, r.stderr
