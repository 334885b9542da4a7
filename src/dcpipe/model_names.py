"""The networks' names (no torch): what a parameter file, a method name and the plan may say, read without
building anything. dcpipe.models builds a network from each name here."""

from __future__ import annotations

import re

NORMS = ("none", "batch", "layer", "instance", "group")
ACTS = ("sigmoid", "relu", "leakyrelu")
POOLS = ("none", "max", "avg")


def _convnet_variants() -> dict[str, dict]:
    v = {"ConvNet": {}}
    v.update({f"ConvNetW{w}": {"width": w} for w in (32, 64, 128, 256)})
    v.update({f"ConvNetD{d}": {"depth": d} for d in (1, 2, 3, 4)})
    v.update({"ConvNetAS": {"act": "sigmoid"}, "ConvNetAR": {"act": "relu"}, "ConvNetAL": {"act": "leakyrelu"}})
    v.update({"ConvNetNN": {"norm": "none"}, "ConvNetBN": {"norm": "batch"}, "ConvNetLN": {"norm": "layer"},
              "ConvNetIN": {"norm": "instance"}, "ConvNetGN": {"norm": "group"}})
    v.update({"ConvNetNP": {"pool": "none"}, "ConvNetMP": {"pool": "max"}, "ConvNetAP": {"pool": "avg"}})
    return v


# ConvNet name -> its ConvNet arguments (the default ConvNet changed in one factor)
CONVNETS = _convnet_variants()
# The other architectures of DC appendix A (models._OTHERS: each name's class and arguments)
OTHER_MODELS = ("MLP", "LeNet", "AlexNet", "AlexNetBN", "VGG11", "VGG11BN", "ResNet18", "ResNet18BN", "ResNet18_AP",
                "ResNet18BN_AP")
MODEL_NAMES = tuple(CONVNETS) + OTHER_MODELS
CONVNET_SPEC = re.compile(r"ConvNet_w(\d+)_d(\d+)_(\w+?)_(\w+?)_(\w+)$")  # e.g. ConvNet_w64_d2_batch_relu_max
# Networks without a `features` block (herding's feature space in continual learning): the rest have one.
NO_FEATURES = ("MLP", "ResNet18", "ResNet18BN", "ResNet18_AP", "ResNet18BN_AP")


def convnet_name(width, depth, norm, act, pool) -> str:
    """The name of an arbitrary ConvNet of the NAS space (parsed back by models.build_model)."""
    return f"ConvNet_w{width}_d{depth}_{norm}_{act}_{pool}"


def is_model_name(name: str) -> bool:
    return name in MODEL_NAMES or bool(CONVNET_SPEC.match(name))


def has_features(name: str) -> bool:
    """Whether the network of a (valid) name has a `features` block (checked against the built networks in
    tests/test_models.py)."""
    return name not in NO_FEATURES


def evaluation_model(name: str) -> str:
    """The network trained on a condensed set: BatchNorm is swapped for instance norm and the AP ResNet
    for the plain one (DC appendix A: batch statistics are unreliable on a few condensed images)."""
    return {"ConvNetBN": "ConvNet", "AlexNetBN": "AlexNet", "VGG11BN": "VGG11", "ResNet18BN": "ResNet18",
            "ResNet18BN_AP": "ResNet18", "ResNet18_AP": "ResNet18"}.get(name, name)
