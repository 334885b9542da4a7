"""Distribution matching (DM paper, WACV 2023) on a tiny problem.

NOTE: the "dataset" below is random tensors, acceptable ONLY because these are unit tests of the mechanics
(the loss, its gradient, seeding, checkpoint/resume); no claim about condensation quality is made here."""

import pytest
import torch

from dcpipe.condense import CondenseConfig
from dcpipe.data import Data
from dcpipe.dm import distribution_match, embed, mean_embedding_loss, synthesise
from dcpipe.models import build_model


def fake_data() -> Data:
    """Random 1x8x8 "images", 10 per class, 3 classes (unit-test stand-in, NOT a real dataset)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(30) % 3
    x = torch.randn(30, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
    return Data("fake", x, y, x[:6].clone(), y[:6].clone(), 3, (0.5,), (0.25,))


def dm_cfg(**kw) -> CondenseConfig:
    base = dict(model="ConvNetW32", ipc=2, iterations=3, lr_img=1.0, batch_real=10, init="real",
                objective="distribution", checkpoint_every=2)
    base.update(kw)
    return CondenseConfig(**base)


def test_the_loss_is_zero_when_the_synthetic_set_equals_the_real_batch():
    net = build_model("ConvNetW32", 1, 3, (8, 8))
    real = torch.randn(5, 1, 8, 8)
    assert mean_embedding_loss(embed(net, real), embed(net, real.clone())).item() == 0.0
    assert mean_embedding_loss(embed(net, real), embed(net, real[:2])).item() > 0


def test_the_loss_is_the_squared_distance_of_the_mean_embeddings():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0]])
    assert mean_embedding_loss(a, b).item() == pytest.approx(2.0 ** 2 + 3.0 ** 2)


def test_a_synthetic_set_that_already_holds_every_real_image_does_not_move():
    """With the whole class both as the real batch and the synthetic set (and no augmentation), the loss is 0 and
    so is its gradient: the images stay where they are."""
    data = fake_data()
    order = torch.cat([torch.nonzero(data.y_train == c).flatten() for c in range(3)])
    data = Data("fake", data.x_train[order], data.y_train[order], data.x_test, data.y_test, 3, (0.5,), (0.25,))
    cfg = dm_cfg(ipc=10, batch_real=10, iterations=2)
    start = distribution_match(data, dm_cfg(ipc=10, batch_real=10, iterations=0), seed=0).images  # the class, shuffled
    images, labels, losses, updates = distribution_match(data, cfg, seed=0)
    # the real batch is the class in another order: its mean differs from the set's only by float rounding
    assert max(losses) < 1e-10 and updates == [0, 0]
    assert torch.allclose(images, start, atol=1e-5) and torch.equal(labels, data.y_train)


def test_the_real_pass_follows_real_precision_and_fp32_stays_exact():
    """condense.real_precision bf16 autocasts DM's real embedding as it does DC's real gradients: the same set as
    the real batch then loses 0 in fp32 and only rounding under bf16."""
    data = fake_data()
    order = torch.cat([torch.nonzero(data.y_train == c).flatten() for c in range(3)])
    data = Data("fake", data.x_train[order], data.y_train[order], data.x_test, data.y_test, 3, (0.5,), (0.25,))
    fp32 = distribution_match(data, dm_cfg(ipc=10, iterations=1, real_precision="fp32"), seed=0).losses
    bf16 = distribution_match(data, dm_cfg(ipc=10, iterations=1, real_precision="bf16"), seed=0).losses
    assert fp32[0] < 1e-10 < bf16[0] < 1e-2


def test_dm_moves_the_synthetic_images_and_lowers_its_loss():
    data = fake_data()
    first = distribution_match(data, dm_cfg(iterations=0), seed=0).images
    out = distribution_match(data, dm_cfg(iterations=30, dsa=None), seed=0)
    assert not torch.equal(out.images, first)
    assert sum(out.losses[-5:]) < sum(out.losses[:5])


@pytest.mark.parametrize("objective", ["gradients", "distribution"])
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(objective, tmp_path):
    """DC and DM alike: interrupt after iteration 2 (the checkpoint of iterations 0-1 is on disk), resume, compare."""
    cfg = dm_cfg(iterations=4, dsa="auto") if objective == "distribution" else CondenseConfig(
        model="ConvNetW32", ipc=2, iterations=4, outer_loop=2, inner_loop=1, batch_real=4, batch_train=4,
        checkpoint_every=2)
    data = fake_data()
    ref = synthesise(data, cfg, seed=3, checkpoint=tmp_path / "a.safetensors")

    class Interrupt(Exception):
        pass

    def stop_at_2(it, loss):
        if it == 2:
            raise Interrupt

    ckpt = tmp_path / "b.safetensors"
    with pytest.raises(Interrupt):
        synthesise(data, cfg, seed=3, checkpoint=ckpt, progress=stop_at_2)
    assert ckpt.exists()
    seen = []
    out = synthesise(data, cfg, seed=3, checkpoint=ckpt, progress=lambda it, l: seen.append(it))
    assert seen == [2, 3]  # iterations 0 and 1 came from the checkpoint
    assert torch.equal(out.images, ref.images) and torch.equal(out.labels, ref.labels) and out.losses == ref.losses


def test_the_condense_stage_runs_dm_or_gradient_matching_by_objective():
    data = fake_data()
    dm = synthesise(data, dm_cfg(iterations=1), seed=0)
    dc = synthesise(data, CondenseConfig(model="ConvNetW32", ipc=2, iterations=1, outer_loop=2, inner_loop=1,
                                         batch_real=4, batch_train=4), seed=0)
    assert dm.net_updates == [0] and dc.net_updates == [1]
