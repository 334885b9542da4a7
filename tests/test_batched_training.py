"""Batched training (evaluate.batched): a stack of models trained at once behaves as the same models one by one."""
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


@pytest.mark.parametrize("model", ["ConvNetD2", "ConvNetBN", "MLP"])
def test_per_class_vectorised_gradients_equal_the_per_class_loop(model):
    from dcpipe.condense import class_gradients

    g = torch.Generator().manual_seed(3)
    real = torch.randn(4, 5, 1, 12, 12, generator=g)  # fake images: 4 classes x 5, this checks the arithmetic
    with torch_seeded(1):
        net = build_model(model, 1, 4, (12, 12))
    net.eval()  # BatchNorm frozen, as during matching
    loop = class_gradients(net, real, vectorised=False)
    vec = class_gradients(net, real, vectorised=True)
    assert len(loop) == len(vec) == 4
    for gl, gv in zip(loop, vec):
        assert [t.shape for t in gl] == [t.shape for t in gv]
        for a, b in zip(gl, gv):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    # and each class's gradient is that of its own batch alone (label c for class c)
    import torch.nn.functional as F
    ref = torch.autograd.grad(F.cross_entropy(net(real[2]), torch.full((5,), 2)), list(net.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ref, vec[2]))


def test_bf16_real_gradients_are_fp32_tensors_pointing_where_the_fp32_ones_do():
    """condense.real_precision: bf16 rounds the matching target only; its direction (what the distance
    compares, per output channel) stays that of the fp32 gradient."""
    from dcpipe.condense import class_gradients

    g = torch.Generator().manual_seed(4)
    real = torch.randn(3, 16, 1, 28, 28, generator=g)  # fake images: this checks the arithmetic only
    with torch_seeded(2):
        net = build_model("ConvNet", 1, 3, (28, 28))
    fp32 = class_gradients(net, real, precision="fp32")
    bf16 = class_gradients(net, real, precision="bf16")
    for ga, gb in zip(fp32, bf16):
        for (name, _), a, b in zip(net.named_parameters(), ga, gb):
            assert b.dtype == torch.float32 and b.shape == a.shape
            if name.startswith("features") and name.endswith("bias") and a.dim() == 1 and a.norm() < 1e-6:
                continue  # a conv bias feeding instance norm: its true gradient is 0, both are rounding noise
            assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99, name
    with pytest.raises(ValueError, match="valid: fp32, bf16"):
        class_gradients(net, real, precision="fp16")


def test_a_resumed_batch_trains_the_same_models_as_the_tail_of_the_whole_batch():
    x, y = _data()
    cfg = TrainConfig(epochs=2, batch=12)
    whole = train_models_batched("ConvNetD1", 3, x, y, x, y, 3, cfg, seed=7)
    tail = train_models_batched("ConvNetD1", 2, x, y, x, y, 3, cfg, seed=7, first=1)
    assert tail == pytest.approx(whole[1:], abs=1e-9)


def test_evaluation_batches_models_only_where_chosen_and_never_with_batchnorm():
    from dcpipe.stages.evaluate import use_batched_training

    assert not use_batched_training("auto", "ConvNet", "cpu")  # measured slower on CPU: reports/records/bench.json
    assert use_batched_training("auto", "ConvNet", "cuda")
    assert use_batched_training("on", "ConvNet", "cpu")
    assert not use_batched_training("on", "ConvNetBN", "cpu")
    assert not use_batched_training("off", "ConvNet", "cuda")
