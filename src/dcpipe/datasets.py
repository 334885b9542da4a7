"""The datasets' specifications (no torch): names, image shapes, classes, normalisation and training class sizes,
what the parameter checks and the plan read before any data is. dcpipe.data prepares and loads the datasets."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    channels: int
    im_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]  # the papers' normalisation (reference code utils.py)
    std: tuple[float, ...]
    variant_of: str = ""  # prepared from this dataset's source files, converted to 32x32 RGB (data.to_rgb32)
    # Images per class in the training split as prepared (labels 0, 1, ...): what bounds an IPC before any work.
    train_class_counts: tuple[int, ...] = ()

    def smallest_class(self) -> tuple[int, int]:
        """(label, training images) of the class with the fewest training images."""
        n = min(self.train_class_counts)
        return self.train_class_counts.index(n), n


# Where each one's files come from: sources.SOURCES.
DATASETS = {
    "MNIST": DatasetSpec("MNIST", 1, (28, 28), 10, (0.1307,), (0.3081,),
                         train_class_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)),
    "FashionMNIST": DatasetSpec("FashionMNIST", 1, (28, 28), 10, (0.2861,), (0.3530,), train_class_counts=(6000,) * 10),
    "SVHN": DatasetSpec("SVHN", 3, (32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                        train_class_counts=(4948, 13861, 10585, 8497, 7458, 6882, 5727, 5595, 5045, 4659)),
    "CIFAR10": DatasetSpec("CIFAR10", 3, (32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
                           train_class_counts=(5000,) * 10),
    "CIFAR100": DatasetSpec("CIFAR100", 3, (32, 32), 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762),
                            train_class_counts=(500,) * 100),
    # The first 4,000 training and 1,000 test images of CIFAR-10 (official order): CPU-sized runs only.
    "CIFAR10_subset": DatasetSpec("CIFAR10_subset", 3, (32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
                                  train_class_counts=(396, 366, 420, 384, 422, 393, 414, 385, 407, 413)),
    # The full USPS (7,291 / 2,007) in its ESL "zip code" form; the normalisation is computed at preparation.
    "USPS": DatasetSpec("USPS", 1, (16, 16), 10, (), (),
                        train_class_counts=(1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644)),
}


# Continual learning (DC paper section 3.2) shares one image format across its digit tasks: "MNIST and USPS
# images are reshaped to 32 x 32 RGB images" (SVHN already is one). The conversion happens once, at preparation,
# into datasets of their own (MNIST_RGB32, USPS_RGB32): every stage (condensation of the rehearsal memory, the
# learner, herding) then reads the same prepared images through the one loader, and DVC tracks them as artifacts.
RGB32 = "_RGB32"
for _grey in ("MNIST", "USPS"):
    _spec = DATASETS[_grey]
    DATASETS[_grey + RGB32] = replace(_spec, name=_grey + RGB32, channels=3, im_size=(32, 32), mean=_spec.mean * 3,
                                      std=_spec.std * 3, variant_of=_grey)


def rgb32_name(name: str) -> str:
    """The dataset in the continual-learning format (32x32 RGB): itself when it already is one."""
    spec = dataset_spec(name)
    if (spec.channels, spec.im_size) == (3, (32, 32)):
        return name
    if name + RGB32 not in DATASETS:
        raise DataError(f"{name} has no 32x32 RGB variant; datasets that have one: "
                        f"{', '.join(n.removesuffix(RGB32) for n in DATASETS if n.endswith(RGB32))}")
    return name + RGB32


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name]
