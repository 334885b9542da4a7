"""Where each dataset's files come from: the files it needs under data/raw (with their known checksums), the
official URLs they are downloaded from (alternates in order), and what each download unpacks into.

Every file under data/raw has a known checksum of its content, and that is what is checked, wherever the file
came from. A gzipped download is checked after decompression: a site mirror may recompress (Debian's
Fashion-MNIST .gz files differ byte-wise from the official ones and hold the same idx files), so the checksum of
the content is the one that says the data is right. sha256 where one is known (shared/data/MANIFEST.md), else
the md5 that torchvision publishes (SVHN, CIFAR)."""

from __future__ import annotations

from dataclasses import dataclass

_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR10_BATCHES = tuple(f"cifar-10-batches-py/{f}" for f in
                         [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])

# Content checksums of every file a dataset may need under data/raw (paths relative to data/raw).
CHECKSUMS = {
    "MNIST/raw/train-images-idx3-ubyte": "sha256:ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "MNIST/raw/train-labels-idx1-ubyte": "sha256:65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "MNIST/raw/t10k-images-idx3-ubyte": "sha256:0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "MNIST/raw/t10k-labels-idx1-ubyte": "sha256:ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "FashionMNIST/raw/train-images-idx3-ubyte": "sha256:c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "FashionMNIST/raw/train-labels-idx1-ubyte": "sha256:bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "FashionMNIST/raw/t10k-images-idx3-ubyte": "sha256:5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "FashionMNIST/raw/t10k-labels-idx1-ubyte": "sha256:0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "USPS_ESL/zip.train.gz": "sha256:66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16",
    "USPS_ESL/zip.test.gz": "sha256:8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f",
    "SVHN/train_32x32.mat": "md5:e26dedcc434d2e4c54c9b2d4a06d8373",
    "SVHN/test_32x32.mat": "md5:eb5a983be6a315427106f1b164d9cef3",
    "cifar-10-batches-py/data_batch_1": "md5:c99cafc152244af753f735de768cd75f",
    "cifar-10-batches-py/data_batch_2": "md5:d4bba439e000b95fd0a9bffe97cbabec",
    "cifar-10-batches-py/data_batch_3": "md5:54ebc095f3ab1f0389bbae665268c751",
    "cifar-10-batches-py/data_batch_4": "md5:634d18415352ddfa80567beed471001a",
    "cifar-10-batches-py/data_batch_5": "md5:482c414d41f54cd18b22e5b47cb7c3cb",
    "cifar-10-batches-py/test_batch": "md5:40351d587109b95175f43aff81a1287e",
    "cifar-10-batches-py/batches.meta": "md5:5ff9c542aee3614f3951f8cda6e48888",
    "cifar-100-python/train": "md5:16019d7e3df5f24257cddd939b257f8d",
    "cifar-100-python/test": "md5:f0ef6b0ae62326f3e7ffdfab6717acfc",
    "cifar-100-python/meta": "md5:7973b15100ade9c7d40fb424638fde48",
    "CIFAR10_subset/cifar10_subset_uint8.npz": "sha256:162bcb98d13a6fd8a07f72d011edd63417a739cf16ad3c0a5189eb1cf94c23f4",
}


@dataclass(frozen=True)
class Remote:
    """One file as served: its name under each base URL, its size, and the files under data/raw it gives."""
    name: str                  # appended to each base URL
    bytes: int                 # as served: the plan's MB and the error blocks
    gives: tuple[str, ...]     # files under data/raw (keys of CHECKSUMS)
    unpack: str = ""           # "": kept as served; "gunzip": decompressed; "untar": the `gives` members extracted


@dataclass(frozen=True)
class Source:
    """Where one dataset's files come from."""
    layouts: tuple[tuple[str, ...], ...]  # the file sets that can make it, preferred first; the last is downloaded
    bases: tuple[str, ...]                # official base URLs, alternates in order (params data.urls replaces them)
    remotes: tuple[Remote, ...]           # what to fetch from each base for the last layout
    licence: str                          # for docs/data.md's table and the plan


def _idx(folder: str, sizes: tuple[int, ...]) -> tuple[Remote, ...]:
    return tuple(Remote(f"{f}.gz", n, (f"{folder}/raw/{f}",), "gunzip") for f, n in zip(_MNIST_FILES, sizes))


_CIFAR10_TAR = "cifar-10-python.tar.gz"
SOURCES = {
    # torchvision's two MNIST hosts, in its order (yann.lecun.com has answered 403/503 at times).
    "MNIST": Source((tuple(f"MNIST/raw/{f}" for f in _MNIST_FILES),),
                    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
                    _idx("MNIST", (9912422, 28881, 1648877, 4542)), "CC BY-SA 3.0 (LeCun, Cortes, Burges)"),
    "FashionMNIST": Source((tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_FILES),),
                           ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                           _idx("FashionMNIST", (26421880, 29515, 4422102, 5148)), "MIT (Zalando SE)"),
    # The ESL book's "zip code" files: the full USPS (7,291 / 2,007), kept gzipped as served.
    "USPS": Source((("USPS_ESL/zip.train.gz", "USPS_ESL/zip.test.gz"),),
                   ("https://hastie.su.domains/ElemStatLearn/datasets/",
                    "https://web.stanford.edu/~hastie/ElemStatLearn/datasets/"),
                   (Remote("zip.train.gz", 1829071, ("USPS_ESL/zip.train.gz",)),
                    Remote("zip.test.gz", 439208, ("USPS_ESL/zip.test.gz",))), "no explicit licence; research use"),
    "SVHN": Source((("SVHN/train_32x32.mat", "SVHN/test_32x32.mat"),), ("http://ufldl.stanford.edu/housenumbers/",),
                   (Remote("train_32x32.mat", 182040794, ("SVHN/train_32x32.mat",)),
                    Remote("test_32x32.mat", 64275384, ("SVHN/test_32x32.mat",))), "non-commercial use only"),
    "CIFAR10": Source((_CIFAR10_BATCHES,), ("https://www.cs.toronto.edu/~kriz/",),
                      (Remote(_CIFAR10_TAR, 170498071, _CIFAR10_BATCHES, "untar"),), "no explicit licence"),
    "CIFAR100": Source((("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),),
                       ("https://www.cs.toronto.edu/~kriz/",),
                       (Remote("cifar-100-python.tar.gz", 169001437,
                               ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"), "untar"),),
                       "no explicit licence"),
    # The first 4,000 training and 1,000 test images of CIFAR-10 in the official order: the team's mirror file
    # (shared/data/MANIFEST.md), else data_batch_1 and test_batch, taken from CIFAR-10's tarball.
    "CIFAR10_subset": Source((("CIFAR10_subset/cifar10_subset_uint8.npz",),
                              ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch")),
                             ("https://www.cs.toronto.edu/~kriz/",),
                             (Remote(_CIFAR10_TAR, 170498071,
                                     ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"), "untar"),),
                             "no explicit licence"),
}


def source(name: str) -> Source:
    if name not in SOURCES:
        raise KeyError(f"no source for dataset {name!r}; datasets with one: {', '.join(SOURCES)}")
    return SOURCES[name]


def download_bytes(name: str) -> int:
    return sum(r.bytes for r in source(name).remotes)


def mb(n: int) -> str:
    """A size as the plan and the error blocks give it: MB, or kB below 0.1 MB."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"
