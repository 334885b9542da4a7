"""The gradient-matching distance of the DC paper (eq. 10) and the "traditional" alternatives of its Table T11.

Eq. 10: D(A, B) = sum over layers l, sum over output nodes i of (1 - A_i . B_i / (|A_i| |B_i|)),
where A_i is the flattened gradient of the i-th output channel (conv) or unit (linear). Biases are ignored.
"""

from __future__ import annotations

import pytest
import torch

from dcpipe.matching import DISTANCES, channel_distance, match_loss




def _grads(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 3, 3, generator=g),   # conv weight (out, in, h, w)
            torch.randn(4, generator=g),            # conv bias
            torch.randn(5, 36, generator=g),        # linear weight (out, in)
            torch.randn(5, generator=g)]            # linear bias


def test_distance_is_zero_for_identical_gradients():
    g = _grads()
    assert match_loss(g, [t.clone() for t in g], "ours").item() == pytest.approx(0.0, abs=1e-5)


def test_distance_is_two_per_output_channel_for_opposite_gradients():
    """cos = -1 for every output channel: 4 conv channels + 5 linear units = 9 nodes -> 18."""
    g = _grads()
    assert match_loss(g, [-t for t in g], "ours").item() == pytest.approx(2.0 * (4 + 5), abs=1e-4)


def test_one_dimensional_parameters_contribute_nothing():
    """Biases (and norm scales/shifts) are 1-D; the paper matches per output node, so they add nothing."""
    b_syn, b_real = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([-5.0, 0.5, 7.0])
    assert channel_distance(b_syn, b_real).item() == 0.0
    w = torch.randn(3, 2, 3, 3)
    with_bias = match_loss([w, b_syn], [w.flip(0), b_real], "ours")
    without_bias = match_loss([w], [w.flip(0)], "ours")
    assert with_bias.item() == pytest.approx(without_bias.item(), abs=1e-6)


def test_conv_gradient_is_compared_per_output_channel_by_hand():
    """Shape (out=2, in=1, h=2, w=2): channel 0 identical (distance 0), channel 1 orthogonal (distance 1).

    Compared as one flattened vector the cosine would be 1/2 (distance 0.5), so 1.0 shows the per-channel split.
    """
    gs = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]],
                       [[[1.0, 0.0], [0.0, 0.0]]]])
    gr = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]],
                       [[[0.0, 1.0], [0.0, 0.0]]]])
    assert gs.shape == (2, 1, 2, 2)
    assert channel_distance(gs, gr).item() == pytest.approx(1.0, abs=1e-5)
    assert match_loss([gs], [gr], "ours").item() == pytest.approx(1.0, abs=1e-5)


def test_distance_is_invariant_to_per_channel_scale():
    """Only the direction of each channel's gradient matters (cosine), not its magnitude."""
    g = torch.randn(3, 2, 3, 3)
    scale = torch.tensor([0.5, 3.0, 10.0]).view(3, 1, 1, 1)
    assert channel_distance(g * scale, g).item() == pytest.approx(0.0, abs=1e-5)


def test_distance_sums_over_layers():
    a, b = _grads(1), _grads(2)
    total = match_loss(a, b, "ours")
    per_layer = sum(channel_distance(x, y) for x, y in zip(a, b))
    assert total.item() == pytest.approx(per_layer.item(), rel=1e-6)


def test_mse_is_squared_euclidean_distance_over_all_parameters_including_biases():
    a, b = _grads(1), _grads(2)
    expected = sum(((x - y) ** 2).sum() for x, y in zip(a, b))
    assert match_loss(a, b, "mse").item() == pytest.approx(expected.item(), rel=1e-6)
    # a bias-only difference counts
    a2 = [t.clone() for t in a]
    a2[1] = a2[1] + 1.0  # 4 bias entries, each off by 1
    assert match_loss(a2, a, "mse").item() == pytest.approx(4.0, rel=1e-6)


def test_cos_is_one_minus_cosine_of_the_whole_flattened_vector():
    a, b = _grads(1), _grads(2)
    fa = torch.cat([t.flatten() for t in a])
    fb = torch.cat([t.flatten() for t in b])
    expected = 1 - torch.dot(fa, fb) / (fa.norm() * fb.norm())
    assert match_loss(a, b, "cos").item() == pytest.approx(expected.item(), abs=1e-5)
    # on the hand example above the whole-vector cosine is 1/2, unlike the per-channel distance of 1
    gs = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    gr = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert match_loss([gs], [gr], "cos").item() == pytest.approx(0.5, abs=1e-5)
    assert match_loss([gs], [gr], "ours").item() == pytest.approx(1.0, abs=1e-5)


def test_unknown_distance_raises_valueerror_listing_valid_ones():
    a = _grads()
    with pytest.raises(ValueError) as e:
        match_loss(a, a, "l1")
    msg = str(e.value)
    for d in ("ours", "mse", "cos"):
        assert d in msg
    assert {"ours", "mse", "cos"} <= set(DISTANCES)


@pytest.mark.parametrize("distance", ["ours", "mse", "cos"])
def test_match_loss_is_differentiable_wrt_synthetic_gradient(distance):
    real = _grads(2)
    syn = [t.clone().requires_grad_(True) for t in _grads(1)]
    loss = match_loss(syn, real, distance)
    loss.backward()
    assert syn[0].grad is not None and torch.isfinite(syn[0].grad).all()
    assert syn[0].grad.abs().sum() > 0
    assert syn[2].grad is not None and syn[2].grad.abs().sum() > 0
    # a gradient step on the synthetic side lowers the distance
    with torch.no_grad():
        stepped = [t - 1e-3 * t.grad if t.grad is not None else t for t in syn]
    assert match_loss(stepped, real, distance).item() < loss.item()


def test_match_loss_backpropagates_through_a_network_to_the_synthetic_images():
    """The use in Algorithm 1: D(grad_theta L(S), grad_theta L(T)) is differentiated w.r.t. the images S."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3))
    params = list(net.parameters())
    x_real, y = torch.randn(6, 1, 6, 6), torch.tensor([0, 1, 2, 0, 1, 2])
    gw_real = [g.detach() for g in torch.autograd.grad(
        torch.nn.functional.cross_entropy(net(x_real), y), params)]
    x_syn = torch.randn(3, 1, 6, 6, requires_grad=True)
    gw_syn = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x_syn), y[:3]), params, create_graph=True)
    match_loss(gw_syn, gw_real, "ours").backward()
    assert x_syn.grad is not None and x_syn.grad.abs().sum() > 0
