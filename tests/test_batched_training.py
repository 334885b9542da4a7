"""Batched training (the speed issue): a stack of models trained at once behaves as the same models one by one."""
import pytest
import torch

from dcpipe.seeding import derive_seed, generator, torch_seeded
from dcpipe.models import build_model
from dcpipe.train import TrainConfig, train_model, train_models, train_models_batched, train_stacked


def _data(n=24, classes=3, seed=0):
    # fake tensors: this tests the optimiser arithmetic, not learning
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.arange(classes).repeat(n // classes)


@pytest.mark.parametrize("augment", [False, True])
def test_batched_training_matches_sequential_training_for_the_same_seeds(augment):
    x, y = _data()
    cfg = TrainConfig(epochs=4, batch=10, augment=augment)  # 3 mini-batches per epoch, lr drop after epoch 2
    seq = train_models("ConvNetD1", 3, x, y, x, y, 3, cfg, seed=11)
    bat = train_models_batched("ConvNetD1", 3, x, y, x, y, 3, cfg, seed=11)
    assert bat == pytest.approx(seq, abs=1e-9)  # identical predictions on the test set


def test_batched_parameters_equal_sequential_parameters_to_float_tolerance():
    x, y = _data()
    cfg = TrainConfig(epochs=3, batch=8, augment=True)
    params, _, _ = train_stacked("ConvNetD1", 3, x, y, 3, cfg, seed=5)
    for i in range(3):
        s = derive_seed(5, "model", i)
        with torch_seeded(s):
            ref = build_model("ConvNetD1", 1, 3, (8, 8))
        train_model(ref, x, y, cfg, generator(derive_seed(s, "batches")))
        for name, p in ref.named_parameters():
            assert torch.allclose(params[name][i], p, atol=1e-5, rtol=1e-4), (i, name)


def test_batchnorm_models_are_refused_with_a_clear_error():
    x, y = _data()
    with pytest.raises(ValueError, match="BatchNorm"):
        train_models_batched("ConvNetBN", 2, x, y, x, y, 3, TrainConfig(epochs=1), seed=0)
