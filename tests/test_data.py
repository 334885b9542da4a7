"""Datasets come from the local mirror, are checksummed, cached as uint8 and normalised as in the papers."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from dcpipe import data
from dcpipe.data import DataError


def test_mnist_is_prepared_from_the_mirror_with_its_checksums(prepared):
    out = prepared("MNIST")
    meta = data.read_json(str(out) + ".json")
    assert meta["n_train"] == 60000 and meta["n_test"] == 10000
    assert meta["train_class_counts"] == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert meta["sources"]["MNIST/raw/train-images-idx3-ubyte"]["sha256"].startswith("ba891046e650")
    z = np.load(out, allow_pickle=False)
    assert z["x_train"].dtype == np.uint8 and z["x_train"].shape == (60000, 1, 28, 28)


def test_fashion_mnist_is_normalised_with_the_papers_statistics(prepared):
    d = data.load(prepared("FashionMNIST"))
    assert d.mean == (0.2861,) and d.std == (0.3530,)
    # normalised training pixels have mean ~0 and std ~1 under the paper's constants
    assert abs(d.x_train.mean().item()) < 0.01 and abs(d.x_train.std().item() - 1) < 0.01
    assert d.x_test.shape == (10000, 1, 28, 28)


def test_train_subset_keeps_the_first_images_of_every_class(prepared):
    d = data.load(prepared("MNIST"), train_subset=7)
    assert torch.equal(torch.bincount(d.y_train), torch.full((10,), 7))


def test_class_sampling_stays_inside_the_class_and_is_seeded(prepared):
    d = data.load(prepared("MNIST"), train_subset=30)
    idx = d.class_indices()[3]
    a = data.sample_class(idx, 10, torch.Generator().manual_seed(1))
    b = data.sample_class(idx, 10, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and len(set(a.tolist())) == 10
    assert (d.y_train[a] == 3).all()


def test_a_missing_dataset_names_the_files_the_mirrors_and_the_fix(tmp_path):
    with pytest.raises(DataError) as e:
        data.locate("SVHN", [tmp_path, tmp_path / "nowhere"])
    msg = str(e.value)
    assert "train_32x32.mat" in msg and str(tmp_path) in msg and "(does not exist)" in msg
    assert "ufldl.stanford.edu" in msg


def test_an_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(DataError, match="valid: MNIST, FashionMNIST"):
        data.dataset_spec("MNSIT")


def test_a_truncated_source_file_is_reported_by_name(tmp_path, mirrors):
    from tests.conftest import require_dataset

    src = require_dataset("MNIST", mirrors)
    mirror = tmp_path / "mirror"
    for rel, path in src.items():
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, mirror / rel)
    bad = mirror / "MNIST/raw/t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: checksum mismatch"):
        data.prepare("MNIST", tmp_path / "out.npz", [mirror], tmp_path / "raw")
    assert not (tmp_path / "out.npz").exists()


def test_gzipped_flat_mirror_layout_is_read(tmp_path, mirrors):
    """Debian installs Fashion-MNIST as flat .gz files; the same layout works for any idx dataset."""
    from tests.conftest import require_dataset

    src = require_dataset("MNIST", mirrors)
    for rel, path in src.items():
        with open(path, "rb") as fin, gzip.open(tmp_path / (rel.split("/")[-1] + ".gz"), "wb") as fout:
            shutil.copyfileobj(fin, fout)
    found = data.locate("MNIST", [tmp_path])
    assert all(p.suffix == ".gz" for p in found.values())


def test_a_flat_mirror_of_one_dataset_never_stands_in_for_another(mirrors):
    """MNIST and Fashion-MNIST use the same file names: Debian's flat Fashion-MNIST folder must not be read as MNIST."""
    from tests.conftest import require_dataset

    fashion = require_dataset("FashionMNIST", mirrors)
    flat = next(iter(fashion.values())).parent
    with pytest.raises(DataError, match="dataset MNIST not found"):
        data.locate("MNIST", [flat])
    with pytest.raises(DataError, match="dataset MNIST not found"):  # nor in the planning check's quick look-up
        data.locate("MNIST", [flat], quick=True)
    assert data.locate("FashionMNIST", [flat], quick=True) == fashion
