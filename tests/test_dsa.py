"""Differentiable Siamese Augmentation (DSA paper, ICML 2021): every transform is differentiable, and one draw
per class and step transforms the real and the synthetic batch alike. Tiny random tensors only."""

import pytest
import torch

from dcpipe import dsa, dsa_strategies
from dcpipe.condense import CondenseConfig, condense
from dcpipe.data import Data
from dcpipe.errors import ParamsError
from dcpipe.seeding import generator
from dcpipe.train import TrainConfig, train_models, train_models_batched


def _draw_of(group, n, seed=0, side=8):
    """A draw of exactly `group` (a one-group strategy), from a fixed seed."""
    return dsa.draw(group, n, generator(seed), side)


@pytest.mark.parametrize("group", dsa_strategies.GROUPS)
def test_each_transform_is_differentiable_with_respect_to_the_images(group):
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    d = _draw_of(group, 2, seed=1, side=4)
    assert d["group"] == group
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, d), (x,), eps=1e-6, atol=1e-4)
    y = dsa.apply(x, d)
    (g,) = torch.autograd.grad(y.square().sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize("group", dsa_strategies.GROUPS)
def test_one_seed_gives_the_real_and_the_synthetic_batch_the_same_parameters(group):
    real_draw, syn_draw = _draw_of(group, 1, seed=7), _draw_of(group, 1, seed=7)
    assert real_draw.keys() == syn_draw.keys()
    for k in real_draw:
        v, w = real_draw[k], syn_draw[k]
        assert torch.equal(v, w) if torch.is_tensor(v) else v == w
    # a synthetic image equal to a real one is transformed into the same image, whatever the batch sizes
    real = torch.randn(6, 1, 8, 8)
    syn = real[:2].clone()
    aug_real, aug_syn = dsa.siamese([real, syn], group, generator(3))
    assert torch.allclose(aug_real[:2], aug_syn, atol=1e-6)


def test_a_shared_draw_transforms_every_image_of_a_batch_alike():
    img = torch.randn(1, 3, 8, 8)
    batch = img.repeat(4, 1, 1, 1)
    for seed in range(12):  # every group of the default strategy comes up among these seeds
        (out,) = dsa.siamese([batch], dsa_strategies.DEFAULT, generator(seed))
        assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6)


def test_evaluation_draws_differ_from_image_to_image():
    batch = torch.randn(1, 3, 8, 8).repeat(16, 1, 1, 1)
    out = dsa.augment(batch, "rotate", generator(0))
    assert not torch.allclose(out[0], out[1])


def test_whole_pixel_crop_shifts_copy_pixels_and_fill_with_zero():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    d = {"group": "crop", "shift": torch.tensor([[0, 1]])}  # one pixel to the right
    y = dsa.apply(x, d)
    assert torch.allclose(y[0, 0, :, 1:], x[0, 0, :, :3], atol=1e-5)
    assert torch.allclose(y[0, 0, :, 0], torch.zeros(4), atol=1e-6)


def test_flip_mirrors_and_cutout_zeroes_a_square_of_half_the_side():
    x = torch.randn(2, 1, 8, 8)
    flipped = dsa.apply(x, {"group": "flip", "flip": torch.tensor([True, False])})
    assert torch.equal(flipped[0], x[0].flip(2)) and torch.equal(flipped[1], x[1])
    cut = dsa.apply(torch.ones(1, 1, 8, 8), {"group": "cutout", "centre": torch.tensor([[0.5, 0.5]]), "size": 4})
    assert int((cut == 0).sum()) == 16


def test_color_keeps_a_grey_image_grey_and_shifts_its_brightness():
    x = torch.zeros(1, 1, 4, 4)
    d = {"group": "color", "brightness": torch.tensor([0.3]), "saturation": torch.tensor([1.7]),
         "contrast": torch.tensor([1.2])}
    assert torch.allclose(dsa.apply(x, d), torch.full_like(x, 0.3))


def test_the_authors_strategies_drop_the_flip_for_digits():
    assert dsa_strategies.strategy_for("auto", "FashionMNIST") == "color_crop_cutout_flip_scale_rotate"
    assert dsa_strategies.strategy_for("auto", "CIFAR10") == dsa_strategies.DEFAULT
    assert dsa_strategies.strategy_for("auto", "MNIST") == "color_crop_cutout_scale_rotate"
    assert dsa_strategies.strategy_for("auto", "SVHN") == dsa_strategies.NO_FLIP
    assert dsa_strategies.strategy_for("crop_flip", "MNIST") == "crop_flip"


def test_an_unknown_group_is_refused_with_the_valid_names():
    with pytest.raises(ParamsError, match="groups: color, crop, cutout, flip, scale, rotate"):
        dsa_strategies.strategy_for("color_zoom", "MNIST")


def _fake_data():
    """Random 1x8x8 "images", 3 classes x 8 (unit-test stand-in, NOT a real dataset)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(24) % 3
    x = torch.randn(24, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
    return Data("fake", x, y, x[:6].clone(), y[:6].clone(), 3, (0.5,), (0.25,))


def test_dsa_condensation_is_reproducible_and_differs_from_plain_dc():
    cfg = dict(model="ConvNetW32", ipc=1, iterations=2, batch_real=4, init="real")
    dc = condense(_fake_data(), CondenseConfig(**cfg), seed=0)
    a = condense(_fake_data(), CondenseConfig(**cfg, dsa="auto"), seed=0)
    b = condense(_fake_data(), CondenseConfig(**cfg, dsa="auto"), seed=0)
    assert torch.equal(a.images, b.images) and a.losses == b.losses
    assert not torch.equal(a.images, dc.images)


def test_dsa_evaluation_trains_the_same_models_one_by_one_and_batched():
    d = _fake_data()
    cfg = TrainConfig(epochs=3, batch=8, dsa="color_crop_flip")
    one = train_models("ConvNetW32", 2, d.x_train, d.y_train, d.x_test, d.y_test, 3, cfg, seed=0)
    batched = train_models_batched("ConvNetW32", 2, d.x_train, d.y_train, d.x_test, d.y_test, 3, cfg, seed=0)
    assert one == pytest.approx(batched, abs=1e-6)
