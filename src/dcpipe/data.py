"""Datasets: find the source files in a local mirror, prepare them once into a uint8 .npz cache, load them
normalised onto a device, and sample per class.

Mirror search order: $DCPIPE_DATA_MIRRORS (':'-separated), then params `data.mirrors`. Downloads are never
attempted: on these machines the dataset hosts are unreachable, and a clear message beats a stack trace
from inside torchvision.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .io import ArtifactError, provenance, read_json, read_npz, write_json, write_npz

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    channels: int
    im_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]  # the papers' normalisation (reference code utils.py)
    std: tuple[float, ...]
    files: tuple[str, ...]  # source files, relative to one mirror directory
    how_to_get: str
    sha256: dict = field(default_factory=dict)  # known checksums of the uncompressed files
    variant_of: str = ""  # prepared from this dataset's source files, converted to 32x32 RGB (to_rgb32)


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DATASETS = {
    "MNIST": DatasetSpec(
        "MNIST", 1, (28, 28), 10, (0.1307,), (0.3081,), tuple(f"MNIST/raw/{f}" for f in _MNIST_FILES),
        "the four MNIST idx files (optionally .gz) from http://yann.lecun.com/exdb/mnist/ into <mirror>/MNIST/raw/",
        {"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
         "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
         "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}),
    "FashionMNIST": DatasetSpec(
        "FashionMNIST", 1, (28, 28), 10, (0.2861,), (0.3530,), tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_FILES),
        "`apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist) or the idx "
        "files from https://github.com/zalandoresearch/fashion-mnist into <mirror>/FashionMNIST/raw/",
        {"train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
         "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
         "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
         "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}),
    "SVHN": DatasetSpec(
        "SVHN", 3, (32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
        ("SVHN/train_32x32.mat", "SVHN/test_32x32.mat"),
        "train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into <mirror>/SVHN/"),
    "CIFAR10": DatasetSpec(
        "CIFAR10", 3, (32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
        tuple(f"cifar-10-batches-py/{f}" for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]),
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extracted into <mirror>/"),
    "CIFAR100": DatasetSpec(
        "CIFAR100", 3, (32, 32), 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762),
        ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
        "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, extracted into <mirror>/"),
    # A real prefix of CIFAR-10 (4,000 train / 1,000 test, shared/data/MANIFEST.md): CPU-sized runs only.
    "CIFAR10_subset": DatasetSpec(
        "CIFAR10_subset", 3, (32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
        ("CIFAR10_subset/cifar10_subset_uint8.npz",),
        "the project's shared data folder (shared/data/CIFAR10_subset)",
        {"cifar10_subset_uint8.npz": "162bcb98d13a6fd8a07f72d011edd63417a739cf16ad3c0a5189eb1cf94c23f4"}),
    # The full USPS (7,291 / 2,007) in its ESL "zip code" form; the normalisation is computed at preparation.
    "USPS": DatasetSpec(
        "USPS", 1, (16, 16), 10, (), (), ("USPS_ESL/zip.train.gz", "USPS_ESL/zip.test.gz"),
        "zip.train.gz and zip.test.gz of The Elements of Statistical Learning "
        "(https://hastie.su.domains/ElemStatLearn/data.html) into <mirror>/USPS_ESL/"),
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


def mirror_dirs(configured: list[str] | None = None) -> list[Path]:
    env = [p for p in os.environ.get("DCPIPE_DATA_MIRRORS", "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in env + list(configured or [])]


def _sha256_content(path: Path) -> str:
    h = hashlib.sha256()
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _content_is(path: Path, want: str) -> bool:
    try:
        return _sha256_content(path) == want
    except (OSError, EOFError):
        return False


def _find(spec: DatasetSpec, mirror: Path, rel: str, verify: bool = True) -> Path | None:
    """A file sits in torchvision's layout (<mirror>/MNIST/raw/...) or flat in the mirror, as Debian installs
    Fashion-MNIST, gzipped or not. MNIST and Fashion-MNIST share file names, so a flat copy of a file with a known
    checksum counts only if its content matches (`verify`; locate(quick=True) checks one file instead); the
    torchvision layout is trusted and checked later."""
    hit = next((c for c in (mirror / rel, mirror / f"{rel}.gz") if c.is_file()), None)
    if hit:
        return hit
    name = Path(rel).name
    for c in (mirror / name, mirror / f"{name}.gz"):
        if c.is_file():
            want = spec.sha256.get(name)
            if want is None or not verify or _content_is(c, want):
                return c
    return None


def locate(name: str, mirrors: list[Path], quick: bool = False) -> dict[str, Path]:
    """Map each source file of `name` to one mirror copy, or raise DataError naming what is missing.

    quick: only look the files up, without reading them (a planning check, data.missing_sources), except that
    a flat mirror is told apart from another dataset's with the same file names by the checksum of its smallest
    such file (a labels file: kilobytes). prepare() checks every file's content anyway."""
    spec = dataset_spec(name)
    for m in mirrors:
        if not m.is_dir():
            continue
        found = {}
        for rel in spec.files:
            hit = _find(spec, m, rel, verify=not quick)
            if hit is None:
                break
            found[rel] = hit
        if len(found) == len(spec.files) and (not quick or _flat_copies_are(spec, m, found)):
            return found
    searched = "\n".join(f"  - {m}{'' if m.is_dir() else '  (does not exist)'}" for m in mirrors) or "  (none configured)"
    raise DataError(
        f"dataset {name} not found offline.\nNeeded files: {', '.join(spec.files)}\nMirrors searched "
        f"($DCPIPE_DATA_MIRRORS, then params.yaml data.mirrors):\n{searched}\nHow to get it: {spec.how_to_get}")


def _flat_copies_are(spec: DatasetSpec, mirror: Path, found: dict[str, Path]) -> bool:
    """Whether the flat copies among `found` are `spec`'s files, judged by the smallest one with a known checksum."""
    flat = [p for rel, p in found.items() if p.parent == mirror and "/" in rel and spec.sha256.get(Path(rel).name)]
    if not flat:
        return True
    probe = min(flat, key=lambda p: p.stat().st_size)
    return _content_is(probe, spec.sha256[probe.name.removesuffix(".gz")])


def missing_sources(datasets: list[str], configured_mirrors: list[str]) -> list[str]:
    """The prepared datasets among `datasets` whose source files no mirror holds: one message each (locate's:
    the files needed, the mirrors searched, how to get them). Cheap (locate(quick=True)): the files are looked
    up, not read, so `dcpipe check-params` and the Snakefile can call it before any work. A variant
    (MNIST_RGB32) needs its source dataset's files, reported once."""
    mirrors = mirror_dirs(configured_mirrors)
    problems = []
    for source in dict.fromkeys(dataset_spec(d).variant_of or d for d in datasets):
        try:
            locate(source, mirrors, quick=True)
        except DataError as e:
            problems.append(str(e))
    return problems


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    return DATASETS[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stage(sources: dict[str, Path], staging: Path) -> dict[str, str]:
    """Copy (decompressing .gz) every source file into torchvision's layout under `staging` (prepare's private
    folder: it never leaves a partial copy behind); return sha256s."""
    sums = {}
    for rel, src in sources.items():
        dst = staging / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            with (gzip.open(src, "rb") if src.suffix == ".gz" and not rel.endswith(".gz") else open(src, "rb")) as fin, \
                    open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        except (OSError, EOFError) as e:
            raise DataError(f"{src}: unreadable or truncated ({e}); replace it with a fresh copy") from e
        sums[rel] = sha256_file(dst)
    return sums


def _check_known(spec: DatasetSpec, sums: dict[str, str], sources: dict[str, Path]) -> None:
    for rel, digest in sums.items():
        want = spec.sha256.get(Path(rel).name)
        if want and want != digest:
            raise DataError(f"{sources[rel]}: checksum mismatch (sha256 {digest[:12]}…, expected {want[:12]}…): the "
                            f"file is truncated or corrupt. Replace it: {spec.how_to_get}")


def _read_torchvision(name: str, root: Path):
    from torchvision import datasets as tvd  # heavy, and only prepare needs it

    def arrays(ds):
        x = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
        y = np.asarray(ds.targets if hasattr(ds, "targets") else ds.labels)
        return x, y

    if name in ("MNIST", "FashionMNIST"):
        cls = getattr(tvd, name)
        (xtr, ytr), (xte, yte) = arrays(cls(root, train=True)), arrays(cls(root, train=False))
        return xtr[:, None], ytr, xte[:, None], yte
    if name == "SVHN":
        # The .mat files of the SVHN site, read as torchvision does (scipy.io.loadmat): X is (32, 32, 3, N) uint8
        # (H, W, C, N) and y is (N, 1) with 10 standing for the digit 0. Read here rather than through
        # torchvision.datasets.SVHN, whose md5 check of the official files would leave this path untestable.
        from scipy.io import loadmat  # heavy, and only SVHN needs it

        def mat(path):
            m = loadmat(path)
            return np.transpose(m["X"], (3, 2, 0, 1)), m["y"].astype(np.int64).reshape(-1) % 10
        return (*mat(root / "SVHN/train_32x32.mat"), *mat(root / "SVHN/test_32x32.mat"))
    if name in ("CIFAR10", "CIFAR100"):
        cls = getattr(tvd, name)
        (xtr, ytr), (xte, yte) = arrays(cls(root, train=True)), arrays(cls(root, train=False))
        return xtr.transpose(0, 3, 1, 2), ytr, xte.transpose(0, 3, 1, 2), yte
    if name == "CIFAR10_subset":
        z = read_npz(root / "CIFAR10_subset/cifar10_subset_uint8.npz")
        return z["x_train"].transpose(0, 3, 1, 2), z["y_train"], z["x_test"].transpose(0, 3, 1, 2), z["y_test"]
    if name == "USPS":
        def esl(path):  # one digit per line: label, then 256 values in [-1, 1] (torchvision's USPS scaling)
            with gzip.open(path, "rt") as f:
                rows = np.loadtxt(f, dtype=np.float32)
            x = ((rows[:, 1:] + 1) / 2 * 255).clip(0, 255).astype(np.uint8).reshape(-1, 1, 16, 16)
            return x, rows[:, 0].astype(np.int64)
        return (*esl(root / "USPS_ESL/zip.train.gz"), *esl(root / "USPS_ESL/zip.test.gz"))
    raise DataError(f"no reader for {name}")


def prepare(name: str, out: Path, mirrors: list[Path], staging: Path) -> dict:
    """Locate, checksum and convert one dataset into `out` (.npz, uint8 N,C,H,W) plus `out`.json metadata."""
    spec = dataset_spec(name)
    sources = locate(name, mirrors)
    # Stage into a private folder and move the copies into `staging` only once their checksums passed and they
    # were read: a truncated or corrupt source file leaves no staged copy behind (a later run, or a reader of
    # data/raw, would otherwise find a file of the right name with the wrong content).
    staging.mkdir(parents=True, exist_ok=True)
    private = staging / f".{name}.{secrets.token_hex(6)}.tmp"
    private.mkdir()
    try:
        sums = _stage(sources, private)
        _check_known(spec, sums, sources)
        try:
            xtr, ytr, xte, yte = _read_torchvision(spec.variant_of or name, private)
        except (RuntimeError, ValueError, OSError) as e:
            raise DataError(f"{name}: could not read the copies of {', '.join(map(str, sources.values()))} ({e}); "
                            f"the mirror copy may be corrupt. {spec.how_to_get}") from e
        for rel in sources:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(private / rel, staging / rel)
    finally:
        shutil.rmtree(private, ignore_errors=True)
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
        "sources": {rel: {"mirror_file": str(p), "sha256": sums[rel]} for rel, p in sources.items()},
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
