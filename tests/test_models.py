"""The networks of the DC paper (Zhao et al., ICLR 2021, appendix A), as specified by the paper and the
authors' reference code where the paper is silent (shared/notes/reference-protocol.md, section 2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcpipe.model_names import MODEL_NAMES, convnet_name, evaluation_model, has_features
from dcpipe.models import build_model, count_parameters, has_batchnorm

MNIST = dict(channels=1, num_classes=10, im_size=(28, 28))
CIFAR = dict(channels=3, num_classes=10, im_size=(32, 32))




def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


# --- parameter counts (measured on the reference implementation) -----------------------------------------

def test_default_convnet_on_mnist_has_317706_parameters():
    """ConvNet = 3 x [conv3x3(128) - instance norm - ReLU - avgpool], Linear(128*4*4, 10)."""
    assert count_parameters(build_model("ConvNet", **MNIST)) == 317_706


def test_default_convnet_parameter_tensors():
    """[conv w, conv b, norm w, norm b] x 3 blocks, then fc w (10, 2048) and fc b: 14 tensors."""
    shapes = [tuple(p.shape) for p in build_model("ConvNet", **MNIST).parameters()]
    block = lambda cin: [(128, cin, 3, 3), (128,), (128,), (128,)]  # noqa: E731
    assert shapes == block(1) + block(128) + block(128) + [(10, 2048), (10,)]


def test_mlp_on_28x28_gray_has_118282_parameters():
    """MLP = 784 -> 128 -> 128 -> 10 with ReLU."""
    assert count_parameters(build_model("MLP", **MNIST)) == 118_282


def test_lenet_has_61706_parameters():
    """LeNet = conv5(6) - conv5(16) - fc 400 -> 120 -> 84 -> 10."""
    assert count_parameters(build_model("LeNet", **MNIST)) == 61_706


def test_count_parameters_counts_every_scalar():
    assert count_parameters(nn.Linear(3, 2)) == 3 * 2 + 2


# --- every architecture builds and classifies both image formats ------------------------------------------

def test_model_names_cover_the_papers_architectures():
    for name in ("ConvNet", "MLP", "LeNet", "AlexNet", "VGG11", "VGG11BN", "ResNet18", "ResNet18BN_AP",
                 "ConvNetBN", "ConvNetD1", "ConvNetD4", "ConvNetW32", "ConvNetW256", "ConvNetNN", "ConvNetMP"):
        assert name in MODEL_NAMES
    assert len(set(MODEL_NAMES)) == len(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_gives_logits_for_gray_28x28_and_colour_32x32(name):
    """Every network accepts MNIST/FashionMNIST-shaped (1x28x28) and SVHN/CIFAR-shaped (3x32x32) images."""
    torch.manual_seed(0)
    with torch.no_grad():
        for spec, x in ((MNIST, torch.randn(2, 1, 28, 28)), (CIFAR, torch.randn(2, 3, 32, 32))):
            model = build_model(name, **spec).eval()
            out = model(x)
            assert out.shape == (2, 10), (name, spec)
            assert torch.isfinite(out).all()


# --- architectural details ---------------------------------------------------------------------------------

def test_instance_norm_is_groupnorm_with_one_group_per_channel():
    """Instance norm (the default ConvNet's norm) is implemented as GroupNorm(C, C) with affine parameters."""
    model = build_model("ConvNet", **MNIST)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 3  # one per conv block
    for m in norms:
        assert m.num_groups == m.num_channels == 128
        assert m.affine
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) for m in model.modules())


@pytest.mark.parametrize("name", ["VGG11", "ResNet18"])
def test_vgg11_and_resnet18_use_instance_norm(name):
    model = build_model(name, **CIFAR)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == m.num_channels for m in norms)
    assert not has_batchnorm(model)


def test_first_conv_pads_28x28_single_channel_input_to_32x32():
    """28x28 gray images are padded by the first conv so all datasets share 32x32 feature-map sizes."""
    model = build_model("ConvNet", **MNIST)
    conv = first_conv(model)
    assert conv.in_channels == 1 and conv.out_channels == 128 and conv.kernel_size == (3, 3)
    with torch.no_grad():
        fmap = conv(torch.zeros(2, 1, 28, 28))
    assert fmap.shape == (2, 128, 32, 32)


def test_first_conv_keeps_32x32_colour_input_at_32x32():
    conv = first_conv(build_model("ConvNet", **CIFAR))
    with torch.no_grad():
        assert conv(torch.zeros(1, 3, 32, 32)).shape[-2:] == (32, 32)


def test_default_convnet_classifier_sees_128x4x4_features():
    model = build_model("ConvNet", **MNIST)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1
    assert linears[0].in_features == 128 * 4 * 4 and linears[0].out_features == 10


def test_convnetbn_has_batchnorm_and_convnet_has_none():
    assert has_batchnorm(build_model("ConvNetBN", **MNIST))
    assert not has_batchnorm(build_model("ConvNet", **MNIST))


# --- the BatchNorm -> instance-norm swap used when evaluating condensed sets ---------------------------------

@pytest.mark.parametrize("train_name, eval_name", [
    ("ConvNetBN", "ConvNet"),
    ("VGG11BN", "VGG11"),
    ("ResNet18BN_AP", "ResNet18"),
    ("ConvNet", "ConvNet"),
    ("MLP", "MLP"),
    ("LeNet", "LeNet"),
])
def test_evaluation_model_swaps_batchnorm_for_instance_norm(train_name, eval_name):
    assert evaluation_model(train_name) == eval_name
    assert not has_batchnorm(build_model(evaluation_model(train_name), **CIFAR))


# --- names -------------------------------------------------------------------------------------------------

def test_unknown_model_name_raises_valueerror_listing_valid_names():
    with pytest.raises(ValueError) as e:
        build_model("NoSuchNet", **MNIST)
    msg = str(e.value)
    assert "NoSuchNet" in msg
    assert "ConvNet" in msg and "ResNet18" in msg and "MLP" in msg


@pytest.mark.parametrize("name", MODEL_NAMES + (convnet_name(32, 1, "none", "relu", "none"),))
def test_the_names_table_says_which_networks_have_a_features_block(name):
    """model_names.has_features (continual learning's herding needs the block) is what the built network has."""
    assert has_features(name) == hasattr(build_model(name, **CIFAR), "features")


def test_convnet_name_builds_a_convnet_of_that_width_and_depth():
    name = convnet_name(64, 2, "batch", "relu", "max")
    model = build_model(name, **MNIST)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2
    assert all(c.out_channels == 64 for c in convs)
    assert has_batchnorm(model)
    assert any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # depth 2 on a 32x32 (padded) map: 32 -> 16 -> 8, so the head sees 64*8*8 features
    assert [m for m in model.modules() if isinstance(m, nn.Linear)][0].in_features == 64 * 8 * 8
