"""The CUDA road: what runs on a GPU computes what the CPU computes. Each test runs on the CPU and, marked `cuda`,
on a GPU (skipped where torch sees none; `make gpu-check` runs the `cuda` ones and records the result). Every test
marked `cuda` lives in this file (dcpipe.gpu_check.CUDA_TEST_FILES): the GPU check collects no other.

NOTE: the "images" here are random tensors. These are unit tests of the arithmetic on each device (the same
gradients, the same trained networks, the same condensation step), not of condensation quality.
"""

from __future__ import annotations

import pytest
import torch

from dcpipe.condense import CondenseConfig, class_gradients, condense, init_synthetic
from dcpipe.data import Data, load
from dcpipe.io import write_json, write_npz
from dcpipe.models import build_model
from dcpipe.seeding import derive_seed, generator, torch_seeded
from dcpipe.train import TrainConfig, train_model, train_stacked

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture
def exact_fp32():
    """TF32 off while a test compares a GPU with the CPU: torch's default TF32 convolutions round to 10-bit
    mantissas, a difference of precision, not of correctness (gpu_check records the setting a run used)."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def fake_data(device="cpu", classes=3, per_class=12) -> Data:
    """Random 1x12x12 "images" with a class-dependent shift (unit-test stand-in, NOT a real dataset)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(classes * per_class) % classes
    x = torch.randn(len(y), 1, 12, 12, generator=g) + y.view(-1, 1, 1, 1).float()
    return Data("fake", x.to(device), y.to(device), x[:9].clone().to(device), y[:9].clone().to(device), classes,
                (0.5,), (0.25,))


@pytest.mark.parametrize("device", DEVICES)
def test_the_device_sees_the_prepared_images_the_cpu_sees(tmp_path, device):
    """A prepared dataset loads onto the device normalised exactly as on the CPU (fake uint8 arrays)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (6, 1, 4, 4), generator=g, dtype=torch.uint8).numpy()
    y = torch.tensor([0, 1, 2, 0, 1, 2]).numpy()
    write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    write_json(tmp_path / "d.npz.json", {"dataset": "fake", "num_classes": 3, "mean": [0.5], "std": [0.25]})
    on_cpu, on_dev = load(tmp_path / "d.npz"), load(tmp_path / "d.npz", device)
    assert on_dev.x_train.device.type == device
    assert torch.allclose(on_dev.x_train.cpu(), on_cpu.x_train, atol=1e-6)
    assert torch.equal(on_dev.y_test.cpu(), on_cpu.y_test)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["ConvNetD2", "ConvNetBN"])
def test_real_gradients_per_class_are_the_same_vmapped_or_looped_on_the_device(device, model, exact_fp32):
    """class_gradients: one vmapped pass (the default on CUDA) and the per-class loop give the CPU's gradients."""
    real = torch.randn(3, 5, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    with torch_seeded(1):
        net = build_model(model, 1, 3, (12, 12))
    net.eval()  # BatchNorm frozen, as while matching
    reference = class_gradients(net, real, vectorised=False)
    net.to(device)
    for vectorised in (False, True):
        got = class_gradients(net, real.to(device), vectorised=vectorised)
        for g_ref, g_dev in zip(reference, got):
            for a, b in zip(g_ref, g_dev):
                assert b.device.type == device
                assert torch.allclose(b.cpu(), a, atol=1e-5, rtol=1e-4), (vectorised, a.shape)


@pytest.mark.parametrize("device", DEVICES)
def test_a_stack_of_models_trained_on_the_device_equals_the_cpu_trained_models(device, exact_fp32):
    """Batched evaluation (train_stacked) on the device trains model i to the CPU's model i (same seed, same
    shuffles and augmentations: the generators stay on the CPU)."""
    d = fake_data()
    cfg = TrainConfig(epochs=3, batch=8, augment=True)
    params, _, _ = train_stacked("ConvNetD2", 2, d.x_train.to(device), d.y_train.to(device), 3, cfg, seed=5)
    for i in range(2):
        s = derive_seed(5, "model", i)
        with torch_seeded(s):
            ref = build_model("ConvNetD2", 1, 3, (12, 12))
        train_model(ref, d.x_train, d.y_train, cfg, generator(derive_seed(s, "batches")))
        for name, p in ref.named_parameters():
            assert params[name].device.type == device
            assert torch.allclose(params[name][i].cpu(), p, atol=1e-4, rtol=1e-3), (i, name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model", ["ConvNetD2", "ConvNetBN"])
def test_a_condensation_step_on_the_device_is_the_cpu_step(device, model, exact_fp32):
    """One outer iteration of Algorithm 1 (2 matching steps, network updates between them; BatchNorm frozen on
    real data for ConvNetBN) on the device ends with the CPU's synthetic images and matching loss: every random
    choice comes from seeded CPU generators, so the devices differ in arithmetic order alone."""
    cfg = CondenseConfig(model=model, ipc=2, iterations=1, outer_loop=2, inner_loop=2, batch_real=8, batch_train=4,
                         bn_real_per_class=8, checkpoint_every=10**9)
    on_cpu = condense(fake_data(), cfg, seed=3)
    on_dev = condense(fake_data(device), cfg, seed=3)
    assert on_dev.images.device.type == device
    assert torch.equal(on_dev.labels.cpu(), on_cpu.labels)
    assert not torch.allclose(on_cpu.images, init_synthetic(fake_data(), cfg, 3)[0], atol=1e-3)  # the step moved them
    assert torch.allclose(on_dev.images.cpu(), on_cpu.images, atol=1e-4, rtol=1e-3)
    assert on_dev.losses == pytest.approx(on_cpu.losses, rel=1e-3)
