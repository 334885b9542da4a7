"""The DSA strategies (no torch): the transform groups a strategy joins with "_", the authors' two, and the `auto`
setting that picks one by dataset. What the parameter checks and the configs read; dcpipe.dsa draws and applies the
transforms."""

from __future__ import annotations

from .errors import ParamsError

GROUPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
# The authors' strategies (their readme): every group, and no flip for digits, where a mirrored 2 or 5 is not one.
DEFAULT = "color_crop_cutout_flip_scale_rotate"
NO_FLIP = "color_crop_cutout_scale_rotate"
DIGIT_DATASETS = ("MNIST", "SVHN", "USPS", "MNIST_RGB32", "USPS_RGB32")
AUTO = "auto"  # the setting that picks DEFAULT or NO_FLIP by dataset (strategy_for)


def parse_strategy(strategy: str) -> tuple[str, ...]:
    groups = tuple(strategy.split("_"))
    bad = [g for g in groups if g not in GROUPS]
    if bad or not strategy:
        raise ParamsError(f"unknown DSA strategy {strategy!r}; groups: {', '.join(GROUPS)} joined by '_' "
                          f"(the authors': {DEFAULT}, {NO_FLIP}), or {AUTO}")
    return groups


def strategy_for(setting: str, dataset: str) -> str:
    """The strategy a setting means for a dataset: `auto` is the authors' choice (no flip for digits)."""
    if setting != AUTO:
        parse_strategy(setting)
        return setting
    return NO_FLIP if dataset.removesuffix("_nas") in DIGIT_DATASETS else DEFAULT
