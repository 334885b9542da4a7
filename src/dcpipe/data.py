"""Datasets: prepare the raw files (which fetch.py put, checked, under data/raw) once into a uint8 .npz cache,
load them normalised onto a device, and sample per class."""

from __future__ import annotations

import gzip
import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .datasets import dataset_spec
from .errors import DataError
from .io import ArtifactError, provenance, read_json, read_npz, write_json, write_npz

log = logging.getLogger(__name__)


CIFAR10_SUBSET = (4000, 1000)  # CIFAR10_subset: the first n training and test images of CIFAR-10


def to_rgb32(x: np.ndarray) -> np.ndarray:
    """uint8 N,C,H,W -> uint8 N,3,32,32: bilinear resize (MNIST 28 -> 32, USPS 16 -> 32), grey replicated to three
    channels. In chunks, so the float copy of a 60,000-image set stays small."""
    out = []
    for i in range(0, len(x), 10000):
        f = torch.from_numpy(np.ascontiguousarray(x[i:i + 10000])).float()
        if tuple(f.shape[2:]) != (32, 32):
            f = torch.nn.functional.interpolate(f, size=(32, 32), mode="bilinear", align_corners=False)
        out.append(f.round_().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1))
    return torch.cat(out).numpy()


class _ArraysOnly(pickle.Unpickler):
    """CIFAR's python batches are pickles of a dict of bytes, lists and numpy arrays: rebuild only those, so a
    batch never runs code, whatever it holds."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor"), ("builtins", "object"),
               ("_codecs", "encode")}  # protocol 2 written by Python 3 spells bytes as _codecs.encode(str, 'latin1')

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused: a CIFAR batch may hold arrays and lists only, not {module}.{name}")
        return super().find_class(module, name)


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: images uint8 N,3,32,32 (its rows are R, G, B planes) and labels."""
    with open(path, "rb") as f:
        try:
            d = _ArraysOnly(f, encoding="latin1").load()
        except pickle.UnpicklingError as e:
            raise DataError(f"{path}: {e}; delete it and rerun the download job") from e
    return np.asarray(d["data"], np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[label_key])


def _read_raw(name: str, root: Path, files: list[str]):
    """(x_train, y_train, x_test, y_test) of `name` from its files under `root` (uint8 N,C,H,W)."""
    if name in ("MNIST", "FashionMNIST"):
        from torchvision import datasets as tvd  # heavy, and only prepare needs it

        cls = getattr(tvd, name)
        tr, te = cls(root, train=True), cls(root, train=False)
        return tr.data.numpy()[:, None], tr.targets.numpy(), te.data.numpy()[:, None], te.targets.numpy()
    if name == "SVHN":
        # The .mat files of the SVHN site, read as torchvision does (scipy.io.loadmat): X is (32, 32, 3, N) uint8
        # (H, W, C, N) and y is (N, 1) with 10 standing for the digit 0.
        from scipy.io import loadmat  # heavy, and only SVHN needs it

        def mat(path):
            m = loadmat(path)
            return np.transpose(m["X"], (3, 2, 0, 1)), m["y"].astype(np.int64).reshape(-1) % 10
        return (*mat(root / "SVHN/train_32x32.mat"), *mat(root / "SVHN/test_32x32.mat"))
    if name == "CIFAR10":
        train = [_cifar_batch(root / f"cifar-10-batches-py/data_batch_{i}", "labels") for i in range(1, 6)]
        return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                *_cifar_batch(root / "cifar-10-batches-py/test_batch", "labels"))
    if name == "CIFAR100":
        return (*_cifar_batch(root / "cifar-100-python/train", "fine_labels"),
                *_cifar_batch(root / "cifar-100-python/test", "fine_labels"))
    if name == "CIFAR10_subset":
        n_train, n_test = CIFAR10_SUBSET
        if "CIFAR10_subset/cifar10_subset_uint8.npz" in files:  # the team's mirror file, HWC
            z = read_npz(root / "CIFAR10_subset/cifar10_subset_uint8.npz")
            return z["x_train"].transpose(0, 3, 1, 2), z["y_train"], z["x_test"].transpose(0, 3, 1, 2), z["y_test"]
        (xtr, ytr), (xte, yte) = (_cifar_batch(root / f"cifar-10-batches-py/{b}", "labels") for b in ("data_batch_1", "test_batch"))
        return xtr[:n_train], ytr[:n_train], xte[:n_test], yte[:n_test]
    if name == "USPS":
        def esl(path):  # one digit per line: label, then 256 values in [-1, 1] (torchvision's USPS scaling)
            with gzip.open(path, "rt") as f:
                rows = np.loadtxt(f, dtype=np.float32)
            x = ((rows[:, 1:] + 1) / 2 * 255).clip(0, 255).astype(np.uint8).reshape(-1, 1, 16, 16)
            return x, rows[:, 0].astype(np.int64)
        return (*esl(root / "USPS_ESL/zip.train.gz"), *esl(root / "USPS_ESL/zip.test.gz"))
    raise DataError(f"no reader for {name}")


def _check_files(manifest_path: Path, files: dict) -> None:
    """Every file the manifest lists still holds the content it was checked to hold (checked again: data/raw is
    a plain folder that anything may have touched since the download job). A plain rerun would not rerun the
    download job (its manifest is still there), so the error names the command that does: the job then finds the
    bad file and fetches it again."""
    raw = Path(manifest_path).parent
    again = f"fetch it again: snakemake --cores 1 -f {manifest_path}"
    for rel, entry in files.items():
        algorithm, want = entry["checksum"].split(":")
        try:
            with open(raw / rel, "rb") as f:
                got = hashlib.file_digest(f, algorithm).hexdigest()
        except OSError as e:
            raise DataError(f"{raw / rel}: unreadable ({e}); {again}") from e
        if got != want:
            raise DataError(f"{raw / rel}: checksum mismatch ({algorithm} {got}, expected {want}): the file changed "
                            f"after its download; {again}")


def prepare(name: str, out: Path, manifest_path: Path) -> dict:
    """Check and convert one dataset's raw files (listed in the download job's manifest, beside them under
    data/raw) into `out` (.npz, uint8 N,C,H,W) plus `out`.json metadata."""
    spec = dataset_spec(name)
    manifest = read_json(manifest_path)  # fetch.write_manifest's
    raw = Path(manifest_path).parent
    _check_files(manifest_path, manifest["files"])
    try:
        xtr, ytr, xte, yte = _read_raw(spec.variant_of or name, raw, list(manifest["files"]))
    except DataError:
        raise
    except (RuntimeError, ValueError, OSError, KeyError, pickle.UnpicklingError) as e:
        raise DataError(f"{name}: could not read {', '.join(str(raw / r) for r in manifest['files'])} ({e}); "
                        f"delete them and rerun the download job") from e
    if spec.variant_of:
        xtr, xte = to_rgb32(xtr), to_rgb32(xte)
    xtr, xte = np.ascontiguousarray(xtr, np.uint8), np.ascontiguousarray(xte, np.uint8)
    ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    mean, std = spec.mean, spec.std
    if not mean:  # USPS: the papers give none; use the training set's own statistics
        f = xtr.astype(np.float64) / 255
        mean, std = tuple(float(v) for v in f.mean(axis=(0, 2, 3)).round(4)), tuple(float(v) for v in f.std(axis=(0, 2, 3)).round(4))
    meta = {
        "dataset": name, "variant_of": spec.variant_of or None, "channels": spec.channels,
        "im_size": list(xtr.shape[2:]), "num_classes": spec.num_classes,
        "mean": list(mean), "std": list(std), "n_train": len(ytr), "n_test": len(yte),
        "train_class_counts": np.bincount(ytr, minlength=spec.num_classes).tolist(),
        "sources": manifest["files"],
        "provenance": provenance(),
    }
    write_npz(out, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    write_json(Path(str(out) + ".json"), meta)
    return meta


@dataclass
class Data:
    """A prepared dataset on a device: normalised float images (N,C,H,W) and int64 labels."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple
    std: tuple

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def im_size(self) -> tuple[int, int]:
        return tuple(self.x_train.shape[2:])

    def class_indices(self) -> list[torch.Tensor]:
        return [torch.nonzero(self.y_train == c).flatten() for c in range(self.num_classes)]

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        m = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x * s + m).clamp(0, 1)


def normalise(x_uint8: np.ndarray | torch.Tensor, mean, std, device="cpu") -> torch.Tensor:
    x = torch.as_tensor(x_uint8, device=device).float().div_(255)
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)  # in place: one float copy of a large set, not three


def load(path: str | Path, device="cpu", train_subset: int | None = None) -> Data:
    """Load a prepared dataset. `train_subset` keeps the first n training images per class (smoke tests)."""
    path = Path(path)
    z = read_npz(path, ("x_train", "y_train", "x_test", "y_test"))
    try:
        meta = read_json(str(path) + ".json")
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{path}.json: metadata of the prepared dataset is missing or unreadable ({e}); "
                            f"rerun prepare_data") from e
    xtr, ytr = z["x_train"], z["y_train"]
    if train_subset:
        keep = np.sort(np.concatenate([np.flatnonzero(ytr == c)[:train_subset] for c in range(meta["num_classes"])]))
        xtr, ytr = xtr[keep], ytr[keep]
    return Data(meta["dataset"], normalise(xtr, meta["mean"], meta["std"], device), torch.as_tensor(ytr, device=device),
                normalise(z["x_test"], meta["mean"], meta["std"], device), torch.as_tensor(z["y_test"], device=device),
                meta["num_classes"], tuple(meta["mean"]), tuple(meta["std"]))


def sample_class(indices: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n distinct random indices of one class (all of them, shuffled, if the class has fewer)."""
    perm = torch.randperm(len(indices), generator=gen, device=gen.device)[:n]
    return indices[perm.to(indices.device)]
