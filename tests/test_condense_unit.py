"""Algorithm 1 of the DC paper (dataset condensation with gradient matching) on a tiny problem.

NOTE: the "dataset" below is random tensors. That is acceptable ONLY because these are unit tests of the
mechanics (shapes, label layout, seeding, checkpoint/resume); no claim about condensation quality is made here.
Quality is checked elsewhere on real data.
"""

from __future__ import annotations

import pytest
import torch

from dcpipe.condense import LOOPS, CondenseConfig, condense, init_synthetic, loops_for
from dcpipe.data import Data

NUM_CLASSES, PER_CLASS, SHAPE = 3, 12, (1, 8, 8)




def fake_data(seed: int = 0) -> Data:
    """Random 1x8x8 "images", 12 per class, 3 classes (unit-test stand-in, NOT a real dataset).
    Labels are interleaved (0,1,2,0,1,2,...) so that class-major outputs cannot come for free."""
    g = torch.Generator().manual_seed(seed)
    n = NUM_CLASSES * PER_CLASS
    y = torch.arange(n) % NUM_CLASSES
    x = torch.randn(n, *SHAPE, generator=g) + y.view(-1, 1, 1, 1).float()  # a class-dependent shift
    return Data(name="fake", x_train=x, y_train=y, x_test=x[:9].clone(), y_test=y[:9].clone(),
                num_classes=NUM_CLASSES, mean=(0.5,), std=(0.25,))


def tiny_cfg(**kw) -> CondenseConfig:
    base = dict(model="ConvNetW32", ipc=2, iterations=3, outer_loop=2, inner_loop=2, batch_real=8,
                batch_train=4, bn_real_per_class=8, checkpoint_every=2)
    base.update(kw)
    return CondenseConfig(**base)


# --- the outer/inner loop schedule (appendix A) --------------------------------------------------------------

@pytest.mark.parametrize("ipc, loops", [(1, (1, 1)), (10, (10, 50)), (20, (20, 25)), (50, (50, 10))])
def test_loop_schedule_matches_appendix_a(ipc, loops):
    """T = 1, ς_θ = 1 for 1 img/cls; T = 10, ς_θ = 50 for 10; T = 20, ς_θ = 25 for 20; T = 50, ς_θ = 10 for 50."""
    assert LOOPS[ipc] == loops
    assert loops_for(ipc) == loops
    assert CondenseConfig(ipc=ipc).loops() == loops


def test_loops_for_an_unscheduled_ipc_raises_listing_valid_ones():
    with pytest.raises(ValueError) as e:
        loops_for(7)
    msg = str(e.value)
    assert "7" in msg
    for ipc in (1, 10, 20, 50):
        assert str(ipc) in msg


def test_explicit_loops_override_the_schedule():
    assert CondenseConfig(ipc=10, outer_loop=3, inner_loop=4).loops() == (3, 4)


def test_paper_defaults():
    """K = 1000, η_S = 0.1, η_θ = 0.01, noise initialisation, eq. 10 distance, 256 real images per class."""
    cfg = CondenseConfig()
    assert (cfg.iterations, cfg.lr_img, cfg.lr_net, cfg.init, cfg.distance, cfg.batch_real) == \
        (1000, 0.1, 0.01, "noise", "ours", 256)


# --- a tiny run ------------------------------------------------------------------------------------------------

def test_condense_returns_class_major_synthetic_set_and_one_loss_per_iteration():
    data, cfg = fake_data(), tiny_cfg()
    images, labels, losses, _ = condense(data, cfg, seed=0)
    assert images.shape == (cfg.ipc * NUM_CLASSES, *SHAPE)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert len(losses) == cfg.iterations
    assert all(isinstance(v, float) and v == v and v >= 0 for v in losses)
    assert torch.isfinite(images).all()
    assert not images.requires_grad


def test_condense_updates_the_synthetic_images():
    data, cfg = fake_data(), tiny_cfg(iterations=1)
    init, _ = init_synthetic(data, cfg, seed=0)
    images, _, _, _ = condense(data, cfg, seed=0)
    assert images.shape == init.shape
    assert not torch.equal(images, init)


def test_zero_iterations_return_the_initialisation():
    data, cfg = fake_data(), tiny_cfg(iterations=0)
    init, init_labels = init_synthetic(data, cfg, seed=5)
    images, labels, losses, _ = condense(data, cfg, seed=5)
    assert torch.equal(images, init) and torch.equal(labels, init_labels) and losses == []


@pytest.mark.parametrize("model", ["ConvNetW32", "ConvNetBN"])
def test_same_seed_is_bit_identical_and_other_seed_differs(model):
    data, cfg = fake_data(), tiny_cfg(model=model, iterations=2)
    a, _, la, _ = condense(data, cfg, seed=0)
    b, _, lb, _ = condense(data, cfg, seed=0)
    c, _, _, _ = condense(data, cfg, seed=1)
    assert torch.equal(a, b) and la == lb
    assert not torch.equal(a, c)


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    data = fake_data()
    ckpt = tmp_path / "c.safetensors"
    condense(data, tiny_cfg(iterations=2), seed=0, checkpoint=ckpt)
    with pytest.raises(RuntimeError):
        condense(data, tiny_cfg(iterations=2, lr_img=0.05), seed=0, checkpoint=ckpt)
    with pytest.raises(RuntimeError):
        condense(data, tiny_cfg(iterations=2), seed=1, checkpoint=ckpt)


# --- initialisation ------------------------------------------------------------------------------------------------

def test_noise_init_is_gaussian_noise_with_class_major_labels():
    data = fake_data()
    x, labels = init_synthetic(data, tiny_cfg(ipc=2), seed=0)
    assert x.shape == (6, *SHAPE)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    # none of the noise images is a training image
    assert not any(torch.equal(xi, xt) for xi in x for xt in data.x_train)


def test_real_init_uses_actual_training_images_of_the_right_class():
    data = fake_data()
    x, labels = init_synthetic(data, tiny_cfg(ipc=3, init="real"), seed=0)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for xi, c in zip(x, labels.tolist()):
        matches = [j for j in range(len(data.y_train)) if torch.equal(xi, data.x_train[j])]
        assert matches, "synthetic image is not a training image"
        assert all(data.y_train[j].item() == c for j in matches)
    # distinct training images within a class
    for c in range(NUM_CLASSES):
        block = x[labels == c]
        assert len({tuple(b.flatten().tolist()) for b in block}) == 3
    # a copy, not a view: condensation must not modify the training set
    x += 1
    assert not any(torch.equal(x[0], xt) for xt in data.x_train)


def test_condense_with_real_init_starts_from_real_images():
    data = fake_data()
    images, labels, _, _ = condense(data, tiny_cfg(init="real", iterations=0), seed=2)
    for xi, c in zip(images, labels.tolist()):
        assert any(torch.equal(xi, data.x_train[j]) and data.y_train[j].item() == c
                   for j in range(len(data.y_train)))


def test_unknown_init_raises():
    with pytest.raises(ValueError):
        init_synthetic(fake_data(), tiny_cfg(init="zeros"), seed=0)
