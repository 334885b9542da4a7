"""The follow-up paper (Jiang et al.): multi-level matching, angle + magnitude distances, "O" and "A" inner steps."""
import math

import pytest
import torch
import torch.nn.functional as F

from dcpipe.condense import VARIANTS, adaptive_steps, class_mean, steps_until_rise
from dcpipe.matching import match_loss, parse_distance
from dcpipe.models import build_model

A = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # two output channels (rows)
B = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
# row 0 identical; row 1: cos = 0, |a-b| = sqrt(1 + 4) = sqrt(5), |a-b|^2 = 5, mean squared = 5/2


@pytest.mark.parametrize("distance,expected", [
    ("d1", 0 + 1),
    ("d2", 0 + math.sqrt(5)),
    ("d3", 0 + 5),
    ("d4", 0 + 2.5),
    ("100d4", 250),
    ("d1+d2", 1 + math.sqrt(5)),
    ("d1+d3", 1 + 5),
    ("d1+100d4", 1 + 250),
    ("d1+0.1d2", 1 + 0.1 * math.sqrt(5)),
    ("improved", 1 + math.sqrt(5)),  # the follow-up's eq. 9, used by its MD variants
])
def test_each_distance_on_a_hand_computed_example(distance, expected):
    assert match_loss([A], [B], distance).item() == pytest.approx(expected, rel=1e-5)


def test_distances_are_summed_over_layers_and_ignore_biases():
    bias_s, bias_r = torch.tensor([1.0, 2.0]), torch.tensor([-5.0, 9.0])
    assert match_loss([A, bias_s], [B, bias_r], "d1+d3").item() == pytest.approx(6, rel=1e-5)
    assert match_loss([A, A], [B, B], "d2").item() == pytest.approx(2 * math.sqrt(5), rel=1e-5)


def test_the_traditional_distances_use_the_whole_flattened_vector():
    bias_s, bias_r = torch.tensor([1.0]), torch.tensor([3.0])
    assert match_loss([A, bias_s], [B, bias_r], "mse").item() == pytest.approx(5 + 4)
    flat_a, flat_b = torch.tensor([3.0, 4, 1, 0]), torch.tensor([3.0, 4, 0, 2])
    cos = (flat_a @ flat_b / flat_a.norm() / flat_b.norm()).item()
    assert match_loss([A], [B], "cos").item() == pytest.approx(1 - cos, rel=1e-5)


def test_distance_names_parse_into_weighted_terms():
    assert parse_distance("d1+0.1d2") == [(1.0, "d1"), (0.1, "d2")]
    assert parse_distance("ours") == [(1.0, "d1")]
    with pytest.raises(ValueError, match="valid: ours"):
        parse_distance("d5")


def test_the_inter_class_gradient_from_per_class_gradients_equals_autograd_on_the_union():
    """Eq. 5: with equal per-class batch sizes, the gradient of the class-balanced loss on the concatenated
    batch is the mean of the per-class gradients, so multi-level matching needs no extra pass."""
    torch.manual_seed(0)
    net = build_model("ConvNetD1", 1, 3, (8, 8))  # instance norm: per-sample, so concatenation changes nothing
    params = list(net.parameters())
    xs = [torch.randn(4, 1, 8, 8) for _ in range(3)]
    per_class = [torch.autograd.grad(F.cross_entropy(net(x), torch.full((4,), c)), params) for c, x in enumerate(xs)]
    union = torch.autograd.grad(F.cross_entropy(net(torch.cat(xs)), torch.arange(3).repeat_interleave(4)), params)
    for mine, ref in zip(class_mean(per_class), union):
        assert torch.allclose(mine, ref, atol=1e-6)


def test_adaptive_steps_follow_eq_12():
    assert [adaptive_steps(t) for t in range(12)] == [50, 40, 30, 20, 10, 10, 10, 10, 10, 10, 5, 5]
    # IPC 10 (T = 10, no update after the last matching step): 190 network updates instead of 9 x 50 = 450
    assert sum(adaptive_steps(t) for t in range(9)) == 190


def test_the_overfitting_rule_stops_at_the_first_rise():
    losses = iter([5.0, 4.0, 3.0, 3.5, 2.0, 1.0])  # before, then after each step
    steps = []
    n = steps_until_rise(lambda: steps.append(1), lambda: next(losses), cap=50)
    assert n == 3 and len(steps) == 3  # 5 -> 4 -> 3 -> 3.5: the third step raised the real loss


def test_the_overfitting_rule_respects_its_cap():
    falling = iter(range(100, 0, -1))
    assert steps_until_rise(lambda: None, lambda: float(next(falling)), cap=7) == 7


def test_named_variants_are_the_follow_ups_table_3_columns():
    assert VARIANTS["DC"] == {"level": "intra", "distance": "ours", "inner_steps": "fixed"}
    assert VARIANTS["M"]["level"] == "multilevel" and VARIANTS["M"]["distance"] == "ours"
    assert VARIANTS["MD"]["distance"] == "improved"
    assert VARIANTS["MDO"]["inner_steps"] == "overfit" and VARIANTS["MDA"]["inner_steps"] == "adaptive"


@pytest.mark.parametrize("level", ["intra", "inter", "multilevel", "interleaved"])
def test_every_matching_level_runs_and_counts_network_updates(level):
    from dcpipe.condense import CondenseConfig, condense
    from dcpipe.data import Data

    # fake tensors: a unit test of the loop's mechanics only
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 1, 8, 8, generator=g)
    y = torch.arange(3).repeat_interleave(10)
    data = Data("fake", x, y, x[:6], y[:6], 3, (0.0,), (1.0,))
    cfg = CondenseConfig(model="ConvNetD1", ipc=2, iterations=2, batch_real=4, outer_loop=3, inner_loop=4,
                         level=level, inner_steps="adaptive" if level == "multilevel" else "fixed")
    out = condense(data, cfg, seed=0)
    assert len(out.losses) == 2 and all(math.isfinite(v) for v in out.losses)
    assert out.net_updates == ([50 + 40] * 2 if level == "multilevel" else [2 * 4] * 2)
