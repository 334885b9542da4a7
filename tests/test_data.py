"""Datasets are fetched into data/raw from the local mirror (the download path: tests/test_download.py), checked
against their known checksums, cached as uint8 and normalised as in the papers."""
import gzip
import shutil

import numpy as np
import pytest
import torch

from dcpipe import data, fetch
from dcpipe.data import DataError


def test_mnist_is_prepared_from_the_mirror_with_its_checksums(prepared):
    out = prepared("MNIST")
    meta = data.read_json(str(out) + ".json")
    assert meta["n_train"] == 60000 and meta["n_test"] == 10000
    assert meta["train_class_counts"] == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert meta["sources"]["MNIST/raw/train-images-idx3-ubyte"]["checksum"].startswith("sha256:ba891046e650")
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


def test_without_downloads_a_missing_dataset_names_the_files_the_mirrors_and_the_fix(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DataError) as e:
        fetch.fetch("SVHN", tmp_path / "raw", [tmp_path, tmp_path / "nowhere", tmp_path / "a-file"], download=False)
    msg = str(e.value)
    assert "train_32x32.mat" in msg and f"{tmp_path / 'nowhere'}  (does not exist)" in msg
    assert f"{tmp_path / 'a-file'}  (not a folder)" in msg and "ufldl.stanford.edu" in msg
    assert "data.download: true" in msg and not (tmp_path / "raw").exists()


def test_an_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(DataError, match="valid: MNIST, FashionMNIST"):
        data.dataset_spec("MNSIT")


def _mirror_copy(src: dict, mirror):
    for rel, path in src.items():
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, mirror / rel)
    return mirror


def test_a_truncated_mirror_file_is_reported_by_name_and_nothing_reaches_data_raw(tmp_path, mirrors):
    from tests.conftest import require_dataset

    mirror = _mirror_copy(require_dataset("MNIST", mirrors), tmp_path / "mirror")
    bad = mirror / "MNIST/raw/t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: checksum mismatch: sha256 .*, expected ff7bcfd4"):
        fetch.fetch("MNIST", tmp_path / "raw", [mirror], download=False)
    assert not (tmp_path / "raw").exists() and not (tmp_path / ".download").exists()


def test_a_file_changed_in_data_raw_after_its_download_stops_prepare(tmp_path, mirrors):
    from tests.conftest import fetch_and_prepare, require_dataset

    mirror = _mirror_copy(require_dataset("USPS", mirrors), tmp_path / "mirror")
    fetch_and_prepare("USPS", tmp_path / "USPS.npz", tmp_path / "raw", [mirror], download=False)
    (tmp_path / "raw/USPS_ESL/zip.test.gz").write_bytes(b"changed")
    (tmp_path / "USPS.npz").unlink()
    with pytest.raises(DataError, match=r"zip.test.gz: checksum mismatch .* fetch it again: snakemake --cores 1 -f .*raw/USPS.json$"):
        data.prepare("USPS", tmp_path / "USPS.npz", tmp_path / "raw/USPS.json")
    assert not (tmp_path / "USPS.npz").exists()


def test_files_already_in_data_raw_are_checked_and_kept(tmp_path, mirrors):
    from tests.conftest import require_dataset

    mirror = _mirror_copy(require_dataset("USPS", mirrors), tmp_path / "mirror")
    first = fetch.fetch("USPS", tmp_path / "raw", [mirror], download=False)
    shutil.rmtree(mirror)  # the second fetch needs no mirror: data/raw holds checked copies
    assert fetch.fetch("USPS", tmp_path / "raw", [], download=False) == first
    (tmp_path / "raw/USPS_ESL/zip.train.gz").write_bytes(b"damaged")  # a damaged copy is not trusted
    with pytest.raises(DataError, match="dataset USPS not found offline"):
        fetch.fetch("USPS", tmp_path / "raw", [], download=False)


def test_gzipped_flat_mirror_layout_is_read(tmp_path, mirrors):
    """Debian installs Fashion-MNIST as flat .gz files; the same layout works for any idx dataset."""
    from tests.conftest import require_dataset

    src = require_dataset("MNIST", mirrors)
    for rel, path in src.items():
        with open(path, "rb") as fin, gzip.open(tmp_path / (rel.split("/")[-1] + ".gz"), "wb") as fout:
            shutil.copyfileobj(fin, fout)
    mirror, found = fetch.in_mirror(fetch.source("MNIST").layouts[0], [tmp_path])
    assert mirror == tmp_path and all(p.suffix == ".gz" for p in found.values())


def test_a_flat_mirror_of_one_dataset_never_stands_in_for_another(mirrors):
    """MNIST and Fashion-MNIST use the same file names: Debian's flat Fashion-MNIST folder must not be read as MNIST."""
    from tests.conftest import require_dataset

    fashion = require_dataset("FashionMNIST", mirrors)
    flat = next(iter(fashion.values())).parent
    mnist = fetch.source("MNIST").layouts[0]
    assert fetch.in_mirror(mnist, [flat]) is None
    assert fetch.in_mirror(mnist, [flat], quick=True) is None  # nor in the planning check's quick look-up
    assert fetch.in_mirror(fetch.source("FashionMNIST").layouts[0], [flat], quick=True)[1] == fashion
