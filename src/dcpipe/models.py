"""The one model factory: the networks of the DC paper's appendix A.

Architectures follow the authors' reference code where the paper is silent (reference-protocol.md §2):
PyTorch default initialisation, instance norm = GroupNorm(C, C), and a first convolution that pads
28x28 one-channel inputs to 32x32 so every dataset shares the same feature-map sizes.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .fused import conv_fusable, conv_norm_relu_avgpool, norm_relu_avgpool
from .model_names import ACTS, CONVNET_SPEC, CONVNETS, MODEL_NAMES, NORMS, POOLS, convnet_name


def make_norm(norm: str, channels: int, hw: tuple[int, int]) -> nn.Module:
    if norm == "none":
        return nn.Identity()
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.LayerNorm([channels, *hw])
    if norm == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if norm == "group":
        return nn.GroupNorm(4, channels, affine=True)
    raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")


def make_act(act: str) -> nn.Module:
    acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "leakyrelu": lambda: nn.LeakyReLU(0.01)}
    if act not in acts:
        raise ValueError(f"unknown activation {act!r}; valid: {', '.join(ACTS)}")
    return acts[act]()


def make_pool(pool: str) -> nn.Module:
    pools = {"none": nn.Identity, "max": lambda: nn.MaxPool2d(2, 2), "avg": lambda: nn.AvgPool2d(2, 2)}
    if pool not in pools:
        raise ValueError(f"unknown pooling {pool!r}; valid: {', '.join(POOLS)}")
    return pools[pool]()


class ConvBlocks(nn.Sequential):
    """depth x [conv, norm, act, pool] (an nn.Sequential, so parameter names are those of the plain chain): a block
    with instance norm, ReLU and 2x2 average pooling runs its last three through dcpipe.fused.norm_relu_avgpool."""

    def __init__(self, *layers):
        super().__init__(*layers)
        self.blocks = [(conv, norm, act, pool, _fusable_block(norm, act, pool))
                       for conv, norm, act, pool in zip(*[iter(layers)] * 4)]

    def forward(self, x):
        for conv, norm, act, pool, fusable in self.blocks:
            if fusable and conv_fusable(x, conv, norm.weight):
                x = conv_norm_relu_avgpool(x, conv, norm.weight, norm.bias, norm.eps)
                continue
            x = one_channel_conv_fp32(conv, x) if conv.in_channels == 1 else conv(x)
            x = norm_relu_avgpool(x, norm.weight, norm.bias, norm.eps) if fusable else pool(act(norm(x)))
        return x


def one_channel_conv_fp32(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A one-channel convolution in fp32 where CPU autocast would run it in bf16: oneDNN's bf16 weight gradient for
    one input channel runs at ~9 GFLOP/s (MNIST's first ConvNet layer at batch 256: 122 ms forward + backward against
    69 ms in fp32 on a Zen 4 core), so fp32 is both faster and exact. Three channels (CIFAR) are faster in bf16."""
    if x.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):
        return conv(x)
    with torch.autocast("cpu", enabled=False):
        return conv(x.float())


def _fusable_block(norm, act, pool) -> bool:
    """Instance norm (affine), ReLU and a 2x2 stride-2 average pool: the chain dcpipe.fused implements."""
    return (isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels and norm.affine
            and type(act) is nn.ReLU and isinstance(pool, nn.AvgPool2d) and pool.kernel_size == 2
            and pool.stride == 2 and pool.padding == 0)


class ConvNet(nn.Module):
    """depth x [conv3x3(width) - norm - act - pool], then one linear layer (the paper's default: 128/3/IN/ReLU/avg)."""

    def __init__(self, channels, num_classes, im_size=(32, 32), width=128, depth=3,
                 norm="instance", act="relu", pool="avg"):
        super().__init__()
        layers, c, hw = [], channels, (32, 32) if tuple(im_size) == (28, 28) else tuple(im_size)
        for d in range(depth):
            pad = 3 if d == 0 and channels == 1 and tuple(im_size) == (28, 28) else 1
            layers += [nn.Conv2d(c, width, 3, padding=pad), make_norm(norm, width, hw), make_act(act), make_pool(pool)]
            c = width
            if pool != "none":
                hw = (hw[0] // 2, hw[1] // 2)
        self.features = ConvBlocks(*layers)
        self.classifier = nn.Linear(width * hw[0] * hw[1], num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class MLP(nn.Module):
    def __init__(self, channels, num_classes, im_size=(32, 32)):
        super().__init__()
        n = channels * im_size[0] * im_size[1]
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                 nn.Linear(128, num_classes))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    def __init__(self, channels, num_classes, im_size=(32, 32)):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2 if channels == 1 else 0), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class AlexNet(nn.Module):
    def __init__(self, channels, num_classes, im_size=(32, 32), norm="none"):
        super().__init__()

        def block(cin, cout, k, pad, pool, hw):
            mods = [nn.Conv2d(cin, cout, k, padding=pad), make_norm(norm, cout, hw), nn.ReLU()]
            return mods + ([nn.MaxPool2d(2, 2)] if pool else [])

        self.features = nn.Sequential(
            *block(channels, 128, 5, 4 if channels == 1 else 2, True, (32, 32)),
            *block(128, 192, 5, 2, True, (16, 16)),
            *block(192, 256, 3, 1, False, (8, 8)),
            *block(256, 192, 3, 1, False, (8, 8)),
            *block(192, 192, 3, 1, True, (8, 8)))
        self.classifier = nn.Linear(192 * 4 * 4, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class VGG11(nn.Module):
    CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, channels, num_classes, im_size=(32, 32), norm="instance"):
        super().__init__()
        layers, c, hw = [], channels, 32
        for i, v in enumerate(self.CFG):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                hw //= 2
            else:
                pad = 3 if i == 0 and channels == 1 else 1
                layers += [nn.Conv2d(c, v, 3, padding=pad), make_norm(norm, v, (hw, hw)), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, norm, strided_pool):
        super().__init__()
        # "AP" variant (DC appendix A): a stride-2 conv becomes stride-1 conv + 2x2 average pooling,
        # which gives per-pixel gradients w.r.t. the synthetic images.
        pool = strided_pool and stride != 1
        s = 1 if pool else stride
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=s, padding=1, bias=False)
        self.pool1 = nn.AvgPool2d(2, 2) if pool else nn.Identity()
        self.n1 = make_norm(norm, cout, (1, 1))
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.n2 = make_norm(norm, cout, (1, 1))
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=s, bias=False),
                                          *([nn.AvgPool2d(2, 2)] if pool else []), make_norm(norm, cout, (1, 1)))

    def forward(self, x):
        out = F.relu(self.n1(self.pool1(self.conv1(x))))
        out = self.n2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, channels, num_classes, im_size=(32, 32), norm="instance", strided_pool=False):
        super().__init__()
        if norm == "layer":
            raise ValueError("ResNet18 supports norm none/batch/instance/group")
        self.stem = nn.Sequential(nn.Conv2d(channels, 64, 3, padding=1, bias=False), make_norm(norm, 64, (1, 1)),
                                  nn.ReLU())
        blocks, c = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c, cout, stride, norm, strided_pool), BasicBlock(cout, cout, 1, norm, strided_pool)]
            c = cout
        self.layers = nn.Sequential(*blocks)
        self.strided_pool = strided_pool
        side = im_size[0] // 8  # 32 -> 4, 28 -> 3 (floor of three 2x2 poolings)
        self.classifier = nn.Linear(512 * side * side if strided_pool else 512, num_classes)

    def forward(self, x):
        out = self.layers(self.stem(x))
        if not self.strided_pool:
            out = F.avg_pool2d(out, 4)  # 32 -> 4x4 -> 1, 28 -> 4x4 -> 1 (as the reference)
        return self.classifier(out.flatten(1))


# model_names.OTHER_MODELS: the same names, read without torch
_OTHERS = {
    "MLP": (MLP, {}),
    "LeNet": (LeNet, {}),
    "AlexNet": (AlexNet, {}),
    "AlexNetBN": (AlexNet, {"norm": "batch"}),
    "VGG11": (VGG11, {}),
    "VGG11BN": (VGG11, {"norm": "batch"}),
    "ResNet18": (ResNet18, {}),
    "ResNet18BN": (ResNet18, {"norm": "batch"}),
    "ResNet18_AP": (ResNet18, {"strided_pool": True}),
    "ResNet18BN_AP": (ResNet18, {"norm": "batch", "strided_pool": True}),
}


def build_model(name: str, channels: int, num_classes: int, im_size=(32, 32)) -> nn.Module:
    """Build a network by name (MODEL_NAMES, or a convnet_name(...) spec). Initialisation uses torch's
    global RNG: wrap the call in seeding.torch_seeded(seed) for a reproducible network."""
    im_size = tuple(im_size)
    if name in CONVNETS:
        return ConvNet(channels, num_classes, im_size, **CONVNETS[name])
    if m := CONVNET_SPEC.match(name):
        w, d, norm, act, pool = m.groups()
        return ConvNet(channels, num_classes, im_size, width=int(w), depth=int(d), norm=norm, act=act, pool=pool)
    if name in _OTHERS:
        cls, kw = _OTHERS[name]
        return cls(channels, num_classes, im_size, **kw)
    raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)} (or {convnet_name('W','D','norm','act','pool')})")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
