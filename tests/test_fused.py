"""The fused instance norm -> ReLU -> 2x2 average pool (dcpipe.fused, the speed issue's memory-bound chain) is the
eager chain, to float rounding: values, gradients, double backward, inside the ConvNet, and off when switched off."""

from __future__ import annotations

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
