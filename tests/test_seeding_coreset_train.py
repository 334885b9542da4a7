"""Seeds, the random-coreset baseline and the evaluation training loop (DC paper section 3 / appendix A).

NOTE: the image tensors here are random. That is acceptable ONLY because these are unit tests of the mechanics
(shapes, determinism, ranges); accuracy on real data is checked elsewhere.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcpipe.coreset import random_select
from dcpipe.seeding import derive_seed, generator, torch_seeded
from dcpipe.train import (TrainConfig, augment_crop_scale_rotate, crop_scale_rotate_theta, test_accuracy as accuracy_of,
                          train_models)



# --- seeds ------------------------------------------------------------------------------------------------------------


def test_derive_seed_is_deterministic():
    assert derive_seed(0, "net", 5) == derive_seed(0, "net", 5)
    assert derive_seed(123, "init") == derive_seed(123, "init")


def test_derive_seed_differs_across_keys_and_bases():
    seeds = {derive_seed(0, "net", 5), derive_seed(0, "net", 6), derive_seed(0, "batches", 5),
             derive_seed(1, "net", 5), derive_seed(0, 5, "net"), derive_seed(0, "net"), derive_seed(0)}
    assert len(seeds) == 7


def test_derive_seed_is_a_nonnegative_63_bit_int():
    for k in range(20):
        s = derive_seed(7, "x", k)
        assert isinstance(s, int) and 0 <= s < 2 ** 63
        generator(s)  # accepted by torch


def test_torch_seeded_reproduces_and_restores_the_global_rng():
    torch.manual_seed(99)
    before = torch.rand(1)
    torch.manual_seed(99)
    with torch_seeded(5):
        a = torch.rand(3)
    after = torch.rand(1)
    with torch_seeded(5):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(before, after)  # the block did not consume the outer stream


# --- random coreset ------------------------------------------------------------------------------------------------


def _labels():
    return torch.arange(40) % 4  # 4 classes x 10, interleaved


def test_random_select_takes_ipc_distinct_images_of_each_class_class_major():
    labels = _labels()
    idx = random_select(labels, 3, 4, seed=0)
    assert idx.shape == (12,)
    assert labels[idx].tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert len(set(idx.tolist())) == 12


def test_random_select_is_deterministic_for_a_seed():
    labels = _labels()
    assert torch.equal(random_select(labels, 3, 4, seed=1), random_select(labels, 3, 4, seed=1))
    assert not torch.equal(random_select(labels, 3, 4, seed=1), random_select(labels, 3, 4, seed=2))


def test_random_select_of_a_whole_class_is_a_permutation():
    labels = _labels()
    idx = random_select(labels, 10, 4, seed=0)
    assert sorted(idx.tolist()) == list(range(40))


def test_random_select_refuses_more_images_than_a_class_has():
    with pytest.raises(ValueError):
        random_select(_labels(), 11, 4, seed=0)


# --- augmentation ------------------------------------------------------------------------------------------------


def test_augmentation_keeps_shape_and_is_deterministic_for_a_seeded_generator():
    x = torch.randn(8, 1, 12, 12)
    a = augment_crop_scale_rotate(x, generator(0))
    b = augment_crop_scale_rotate(x, generator(0))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()
    assert not torch.equal(a, x)  # something was done
    assert not torch.equal(a, augment_crop_scale_rotate(x, generator(1)))


def test_augmentation_gives_each_image_one_shift_scale_or_rotation_of_dc_appendix_a():
    theta = crop_scale_rotate_theta(3000, (28, 28), generator(0))
    linear, shift = theta[:, :, :2], theta[:, :, 2]
    eye = torch.eye(2).expand_as(linear)
    crop = torch.all(linear == eye, dim=(1, 2))
    pixels = -shift[crop] * 28 / 2
    assert torch.allclose(pixels, pixels.round(), atol=1e-5) and pixels.min() >= -4 and pixels.max() <= 3
    scale = ~crop & (linear[:, 0, 1] == 0) & (linear[:, 1, 0] == 0)
    s = 1 / torch.diagonal(linear[scale], dim1=1, dim2=2)
    assert s.min() >= 0.8 - 1e-6 and s.max() <= 1.2 + 1e-6 and torch.all(shift[scale] == 0)
    rot = ~crop & ~scale
    angle = torch.rad2deg(torch.atan2(linear[rot, 1, 0], linear[rot, 0, 0]))
    assert angle.abs().max() <= 45 + 1e-4 and torch.all(shift[rot] == 0)
    assert torch.allclose(linear[rot, 0, 0], linear[rot, 1, 1]) and torch.allclose(linear[rot, 0, 1], -linear[rot, 1, 0])
    assert all(abs(int(k.sum()) - 1000) < 150 for k in (crop, scale, rot))  # the three ops equally likely


def test_augmentation_keeps_colour_images_shape():
    x = torch.randn(4, 3, 16, 16)
    assert augment_crop_scale_rotate(x, generator(3)).shape == (4, 3, 16, 16)


# --- training and testing -----------------------------------------------------------------------------------------


def _fake_split(seed=0):
    """Random 1x8x8 "images", 3 classes (a unit-test stand-in, NOT a real dataset)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(12) % 3
    x = torch.randn(12, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
    yt = torch.arange(9) % 3
    xt = torch.randn(9, 1, 8, 8, generator=g) + yt.view(-1, 1, 1, 1).float()
    return x, y, xt, yt


def test_train_models_returns_one_accuracy_per_model_in_unit_interval():
    x, y, xt, yt = _fake_split()
    cfg = TrainConfig(epochs=3, batch=4)
    accs = train_models("ConvNetW32", 2, x, y, xt, yt, 3, cfg, seed=0)
    assert len(accs) == 2
    assert all(0.0 <= a <= 1.0 for a in accs)
    # accuracies on 9 test images are multiples of 1/9
    assert all(abs(a * 9 - round(a * 9)) < 1e-9 for a in accs)


def test_train_models_same_seed_gives_identical_accuracies():
    x, y, xt, yt = _fake_split()
    cfg = TrainConfig(epochs=3, batch=4, augment=True)
    seen = []
    a = train_models("ConvNetW32", 2, x, y, xt, yt, 3, cfg, seed=7, progress=lambda i, acc: seen.append(i))
    b = train_models("ConvNetW32", 2, x, y, xt, yt, 3, cfg, seed=7)
    assert a == b
    assert seen == [0, 1]


def test_model_i_does_not_depend_on_how_many_models_are_trained():
    x, y, xt, yt = _fake_split()
    cfg = TrainConfig(epochs=2, batch=4)
    one = train_models("MLP", 1, x, y, xt, yt, 3, cfg, seed=4)
    three = train_models("MLP", 3, x, y, xt, yt, 3, cfg, seed=4)
    assert three[0] == one[0]


class AlwaysZero(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x):
        out = torch.zeros(len(x), self.num_classes)
        out[:, 0] = 1.0
        return out


def test_accuracy_of_a_constant_class_0_predictor_is_the_fraction_of_zeros():
    y = torch.tensor([0, 1, 2, 0, 0, 1, 2, 2, 0, 1])  # 4 zeros out of 10
    x = torch.zeros(10, 1, 4, 4)
    assert accuracy_of(AlwaysZero(), x, y) == pytest.approx(0.4)
    assert accuracy_of(AlwaysZero(), x, y, batch=3) == pytest.approx(0.4)  # batching does not change it
    assert accuracy_of(AlwaysZero(), x, torch.zeros(10, dtype=torch.long)) == 1.0
    assert accuracy_of(AlwaysZero(), x, torch.ones(10, dtype=torch.long)) == 0.0


def test_accuracy_puts_the_model_in_eval_mode():
    net = AlwaysZero()
    net.train()
    accuracy_of(net, torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    assert not net.training


def test_train_config_defaults_follow_the_paper():
    """SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, 300 epochs: the reference code's evaluation
    protocol (reference-protocol.md section 5), which the paper does not restate."""
    cfg = TrainConfig()
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch) == (0.01, 0.9, 5e-4, 256)
