"""Downloads: every dataset comes over HTTP where no mirror holds it, checked against its known checksum, written
atomically, retried with back-off, falling through to alternate URLs; an offline machine gets one block per dataset
before any job. Every request goes to a real HTTP server on 127.0.0.1 that the test starts (tests/loopback.py)."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from dcpipe import fetch, sources
from dcpipe.errors import DataError
from tests.conftest import NO_MIRROR, ROOT, copy_workflow, fetch_and_prepare, run, smoke_params
from tests.loopback import PATHS, Server, dead_url

MNIST_FILES = [r.name for r in sources.SOURCES["MNIST"].remotes]


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch):
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.01)


def _nothing_under(raw: Path) -> bool:
    return not raw.exists() or not any(p.is_file() for p in raw.rglob("*"))


# ------------------------------------------------------------------------------------------ the end-to-end run


def test_the_smoke_run_downloads_prepares_and_runs_with_no_mirror(smoke_run):
    plan = (smoke_run / ".smoke-run-stderr.txt").read_text()
    for name in ("FashionMNIST", "MNIST", "USPS"):
        assert f"download: {name} {sources.mb(sources.download_bytes(name))} from 127.0.0.1:" in plan
        log = (smoke_run / f"logs/download/{name}.log").read_text()
        assert "checksum ok" in log and "mirror" not in log
    assert (smoke_run / "reports/index.html").exists()


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST", "USPS_RGB32"])
def test_downloaded_data_prepares_to_the_same_arrays_as_the_mirror_route(smoke_run, prepared, name):
    ours, mirrored = np.load(smoke_run / f"data/prepared/{name}.npz"), np.load(prepared(name))
    assert sorted(ours.files) == sorted(mirrored.files)
    for k in ours.files:
        assert ours[k].dtype == mirrored[k].dtype and ours[k].shape == mirrored[k].shape
        assert ours[k].tobytes() == mirrored[k].tobytes(), f"{name} {k} differs"


def test_a_second_run_downloads_nothing(smoke_run, server):
    before = server.gets()
    res = run(["snakemake", "-n"], smoke_run, env=NO_MIRROR)
    assert "Nothing to be done" in res.stdout + res.stderr and "download:" not in res.stderr
    # what a rerun of each download job does (snakemake --forcerun download): the files in data/raw are checked
    for name in PATHS:
        manifest = fetch.fetch(name, smoke_run / "data/raw", [], tuple(server.urls()[name]))
        assert manifest == fetch.read_manifest(smoke_run / f"data/raw/{name}.json")
    assert server.gets() == before


def test_an_offline_machine_gets_one_block_per_dataset_before_any_job(tmp_path):
    wd = copy_workflow(tmp_path)
    dead = dead_url()
    smoke_params(wd, {name: [dead + path] for name, path in PATHS.items()})
    res = run(["snakemake", "--cores", "1"], wd, check=False, env=NO_MIRROR)
    assert res.returncode != 0
    err = res.stderr
    assert "error: params.yaml: FashionMNIST (30.9 MB) could not be downloaded:" in err
    for name, path in PATHS.items():
        first = sources.SOURCES[name].remotes[0]
        assert f"  {first.name} ({sources.mb(first.bytes)}):\n    {dead}{path}{first.name}: connection refused" in err
    assert err.count("Two ways out:") == 3 and "data.urls: {MNIST:" in err
    assert not (wd / "logs").exists() and not (wd / "data").exists()  # no job started
    res = run(["dcpipe", "check-params", "params.yaml"], wd, env=NO_MIRROR)  # the plan says what it will fetch
    assert "download: MNIST 11.6 MB from 127.0.0.1:" in res.stderr and "download: 44.7 MB in all" in res.stderr


# ------------------------------------------------------------------------------------------ faults, in-process


def test_a_changed_byte_gives_a_checksum_error_naming_both_hashes_and_the_url(server, tmp_path):
    def flip(body):
        return 200, body[:1000] + bytes([body[1000] ^ 1]) + body[1001:], 0
    server.faults["ElemStatLearn/datasets/zip.test.gz"] = flip
    with pytest.raises(fetch.DownloadError) as e:
        fetch.fetch("USPS", tmp_path / "raw", [], tuple(server.urls()["USPS"]))
    msg = str(e.value)
    want = sources.CHECKSUMS["USPS_ESL/zip.test.gz"].split(":")[1]
    assert f"{server.url}ElemStatLearn/datasets/zip.test.gz: checksum: USPS_ESL/zip.test.gz: checksum mismatch: " \
           f"sha256 " in msg and f", expected {want}" in msg
    assert _nothing_under(tmp_path / "raw") and not (tmp_path / ".download").exists()


def test_a_truncated_body_is_refused_and_leaves_nothing(server, tmp_path):
    server.faults["mnist/t10k-labels-idx1-ubyte.gz"] = lambda body: (200, body[: len(body) // 2], 0)
    with pytest.raises(fetch.DownloadError, match=r"t10k-labels-idx1-ubyte.gz: checksum: not a readable archive"):
        fetch.fetch("MNIST", tmp_path / "raw", [], tuple(server.urls()["MNIST"]))
    assert _nothing_under(tmp_path / "raw")


def test_a_404_on_the_first_url_falls_through_to_the_next(server, tmp_path, caplog):
    caplog.set_level("INFO", logger="dcpipe")
    bases = (server.url + "gone/", server.url + "mnist/")
    manifest = fetch.fetch("MNIST", tmp_path / "raw", [], bases)
    assert sorted(manifest["files"]) == sorted(sources.SOURCES["MNIST"].layouts[0])
    assert f"{server.url}gone/train-images-idx3-ubyte.gz failed: HTTP 404" in caplog.text
    assert [p for m, p in server.requests if p.startswith("gone/")] == [f"gone/{f}" for f in MNIST_FILES]  # no retry


def test_a_server_error_is_retried_with_back_off(server, tmp_path):
    answers = iter([(503, b"busy", 0)])
    server.faults["ElemStatLearn/datasets/zip.test.gz"] = lambda body: next(answers, None) or (200, body, 0)
    fetch.fetch("USPS", tmp_path / "raw", [], tuple(server.urls()["USPS"]))
    assert [p for _, p in server.requests].count("ElemStatLearn/datasets/zip.test.gz") == 2


def test_the_server_down_gives_the_offline_block(tmp_path):
    dead = dead_url()
    blocks = fetch.probe({"USPS": (dead,), "MNIST": (dead + "a/", dead + "b/")})
    assert list(blocks) == ["USPS", "MNIST"] and f"    {dead}b/t10k-labels-idx1-ubyte.gz: connection refused" in blocks["MNIST"]
    with pytest.raises(fetch.DownloadError) as e:
        fetch.fetch("USPS", tmp_path / "raw", [tmp_path / "no-mirror"], (dead, dead + "second/"))
    assert str(e.value).startswith("USPS (2.3 MB) could not be downloaded:\n  zip.train.gz (1.8 MB):\n"
                                   f"    {dead}zip.train.gz: connection refused\n"
                                   f"    {dead}second/zip.train.gz: connection refused\n")
    assert "Two ways out:" in str(e.value) and _nothing_under(tmp_path / "raw")


def test_the_environment_proxy_is_obeyed(server, tmp_path, monkeypatch):
    """requests under pooch reads HTTP(S)_PROXY: a URL on a host that does not exist arrives through the proxy
    (the loopback server answers a proxied request by its path)."""
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fetch.fetch("USPS", tmp_path / "raw", [], ("http://datasets.invalid/ElemStatLearn/datasets/",))
    assert (tmp_path / "raw/USPS_ESL/zip.train.gz").is_file()


def test_a_transfer_killed_mid_way_leaves_nothing_and_a_rerun_ends_with_the_right_file(server, tmp_path):
    server.faults["ElemStatLearn/datasets/zip.train.gz"] = lambda body: (200, body, len(body) // 2)
    code = ("import sys; from pathlib import Path; from dcpipe import fetch; "
            f"fetch.fetch('USPS', Path(sys.argv[1]), [], ({server.url + PATHS['USPS']!r},))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "raw")], env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    partial = tmp_path / ".download/USPS"
    for _ in range(600):
        if any(p.is_file() and p.stat().st_size > 0 for p in partial.rglob("*")):
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(partial.rglob("*")) and _nothing_under(tmp_path / "raw")  # the half file sits outside data/raw
    server.faults.clear()
    fetch.fetch("USPS", tmp_path / "raw", [], tuple(server.urls()["USPS"]))
    assert fetch.checksum_problem(tmp_path / "raw/USPS_ESL/zip.train.gz", "USPS_ESL/zip.train.gz") is None
    assert not partial.exists()


# ------------------------------------------------------------------ SVHN and CIFAR: the code path, on made-up files


def _serve(tmp_path, files: dict[str, bytes]) -> Server:
    root = tmp_path / "site"
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return Server(root)


def _md5(body: bytes) -> str:
    import hashlib

    return "md5:" + hashlib.md5(body).hexdigest()


def _batch(x: np.ndarray, labels, key="labels") -> bytes:
    """A CIFAR python batch as the official ones are written: a pickled dict, images as R|G|B planes per row."""
    return pickle.dumps({"batch_label": "made by the test", "data": x.reshape(len(x), -1), key: [int(v) for v in labels]},
                        protocol=2)


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_svhn_is_downloaded_and_read_from_its_mat_files(tmp_path, monkeypatch):
    """Made-up images in SVHN's real .mat format (written with scipy; X is H,W,C,N, label 10 is the digit 0)."""
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    bodies = {}
    for split, n in (("train", 30), ("test", 20)):
        buf = io.BytesIO()
        savemat(buf, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                      "y": (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)})
        bodies[f"housenumbers/{split}_32x32.mat"] = buf.getvalue()
        monkeypatch.setitem(sources.CHECKSUMS, f"SVHN/{split}_32x32.mat", _md5(buf.getvalue()))
    srv = _serve(tmp_path, bodies)
    try:
        meta = fetch_and_prepare("SVHN", tmp_path / "SVHN.npz", tmp_path / "raw", [], bases=(srv.url + "housenumbers/",))
    finally:
        srv.close()
    z = np.load(tmp_path / "SVHN.npz")
    assert meta["n_train"] == 30 and z["x_train"].shape == (30, 3, 32, 32)
    assert z["y_train"][:11].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]  # 10 -> 0
    assert meta["sources"]["SVHN/train_32x32.mat"]["checksum"] == sources.CHECKSUMS["SVHN/train_32x32.mat"]


def _cifar10_tarball(train: np.ndarray, ytrain, test: np.ndarray, ytest, monkeypatch) -> bytes:
    members = {"cifar-10-batches-py/data_batch_1": _batch(train, ytrain), "cifar-10-batches-py/test_batch": _batch(test, ytest),
               "cifar-10-batches-py/batches.meta": pickle.dumps({"label_names": [str(i) for i in range(10)]}, protocol=2)}
    for i in range(2, 6):
        members[f"cifar-10-batches-py/data_batch_{i}"] = _batch(np.zeros((2, 3, 32, 32), np.uint8), [0, 1])
    for name, body in members.items():
        monkeypatch.setitem(sources.CHECKSUMS, name, _md5(body))
    return _tarball(members)


def test_cifar10_is_downloaded_unpacked_and_read_without_running_pickled_code(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    srv = _serve(tmp_path, {"kriz/cifar-10-python.tar.gz": _cifar10_tarball(x, range(12), x[:5], range(5), monkeypatch)})
    try:
        meta = fetch_and_prepare("CIFAR10", tmp_path / "C.npz", tmp_path / "raw", [], bases=(srv.url + "kriz/",))
    finally:
        srv.close()
    z = np.load(tmp_path / "C.npz")
    assert meta["n_train"] == 12 + 4 * 2 and np.array_equal(z["x_train"][:12], x)
    assert z["y_test"].tolist() == [0, 1, 2, 3, 4]
    # a batch that carries code is refused, not run
    evil = tmp_path / "raw/cifar-10-batches-py/test_batch"
    evil.write_bytes(pickle.dumps(print, protocol=2))
    monkeypatch.setitem(sources.CHECKSUMS, "cifar-10-batches-py/test_batch", _md5(evil.read_bytes()))
    manifest = fetch.read_manifest(tmp_path / "raw/CIFAR10.json")
    manifest["files"]["cifar-10-batches-py/test_batch"]["checksum"] = _md5(evil.read_bytes())
    fetch.write_manifest(tmp_path / "raw/CIFAR10.json", manifest)
    with pytest.raises(DataError, match=r"test_batch: refused: a CIFAR batch may hold arrays and lists only, not __builtin__\.print"):
        from dcpipe.data import prepare
        prepare("CIFAR10", tmp_path / "C2.npz", tmp_path / "raw/CIFAR10.json")


def test_cifar10_subset_derived_from_the_tarball_equals_the_mirror_file(tmp_path, mirrors, prepared, monkeypatch):
    """A CIFAR-10 tarball whose data_batch_1 and test_batch start with the mirror file's real 4,000 training and
    1,000 test images (the rest of each batch, and the other batches, filler made by the test) gives the same
    prepared CIFAR10_subset as the mirror file."""
    from tests.conftest import require_dataset

    require_dataset("CIFAR10_subset", mirrors)
    real = np.load(prepared("CIFAR10_subset"))
    filler = np.full((500, 3, 32, 32), 7, np.uint8)
    tarball = _cifar10_tarball(np.concatenate([real["x_train"], filler]), [*real["y_train"], *[0] * 500],
                               np.concatenate([real["x_test"], filler]), [*real["y_test"], *[0] * 500], monkeypatch)
    srv = _serve(tmp_path, {"kriz/cifar-10-python.tar.gz": tarball})
    try:
        fetch_and_prepare("CIFAR10_subset", tmp_path / "sub.npz", tmp_path / "raw", [], bases=(srv.url + "kriz/",))
    finally:
        srv.close()
    ours = np.load(tmp_path / "sub.npz")
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert ours[k].dtype == real[k].dtype and ours[k].tobytes() == real[k].tobytes(), k
    assert sorted(p.name for p in (tmp_path / "raw/cifar-10-batches-py").iterdir()) == ["data_batch_1", "test_batch"]


def test_a_gzipped_idx_file_is_checked_by_its_content(tmp_path, server):
    """A site mirror may recompress: the loopback server's MNIST .gz files are not the official bytes."""
    served = gzip.decompress((server.root / "mnist/t10k-labels-idx1-ubyte.gz").read_bytes())
    fetch.fetch("MNIST", tmp_path / "raw", [], tuple(server.urls()["MNIST"]))
    assert (tmp_path / "raw/MNIST/raw/t10k-labels-idx1-ubyte").read_bytes() == served
