"""Download faults, third round: a server that stalls or trickles, a mirror that refuses HEAD, a corrupt copy in the
first mirror, a byte flipped in data/raw after its download. Each test bounds its own time (a subprocess timeout, or
a call awaited with a timeout) and checks that nothing under its data/ folder is left corrupt. Every request goes to
the loopback server on 127.0.0.1 (tests/loopback.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from dcpipe import fetch, sources, transfer
from tests.conftest import NO_MIRROR, ROOT, copy_workflow, require_dataset, smoke_params
from tests.loopback import PATHS

MNIST_FILES = [r.name for r in sources.SOURCES["MNIST"].remotes]
QUICK = {"transfer.READ_S": 2, "transfer.WINDOW_S": 2, "fetch.BACKOFF_S": 0.01}  # the limits, lowered to seconds

# One fetch in its own process, as the download job runs it (its log lines, then `error: ...` and exit 2), so that
# the test can bound it with a timeout and lower the module's limits there.
FETCH = """
import json, logging, sys
from pathlib import Path
from dcpipe import fetch, transfer
from dcpipe.errors import DataError

a = json.loads(sys.argv[1])
for key, value in a["limits"].items():
    module, name = key.split(".")
    setattr({"fetch": fetch, "transfer": transfer}[module], name, value)
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
raw = Path(a["raw"])
try:
    manifest = fetch.fetch(a["name"], raw, [Path(m) for m in a["mirrors"]], tuple(a["bases"]) or None, a["download"])
except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
fetch.write_manifest(raw / (a["name"] + ".json"), manifest)
"""


def _fetch(name: str, raw: Path, bases=(), mirrors=(), limits=None, download=True, timeout=60):
    """(the finished process, its wall time in s); a fetch still going after `timeout` s fails the test."""
    args = {"name": name, "raw": str(raw), "bases": list(bases), "mirrors": [str(m) for m in mirrors],
            "limits": QUICK if limits is None else limits, "download": download}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", FETCH, json.dumps(args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return r, time.monotonic() - t0


def _within(seconds: float, fn, *args):
    """fn(*args), failing the test when it has not returned after `seconds`."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(fn, *args).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING ")]


def _intact(data: Path) -> None:
    """Nothing under data/ is corrupt: no partial copy is left, and every file under data/raw holds its content."""
    assert not (data / ".download").exists()
    for p in (data / "raw").rglob("*") if (data / "raw").exists() else []:
        rel = p.relative_to(data / "raw").as_posix()
        if p.is_file() and rel in sources.CHECKSUMS:
            assert fetch.checksum_problem(p, rel) is None, rel


def _nothing_under(raw: Path) -> bool:
    return not raw.exists() or not any(p.is_file() for p in raw.rglob("*"))


def _flipped(body: bytes, at: int = 1000) -> bytes:
    return body[:at] + bytes([body[at] ^ 1]) + body[at + 1:]


# ------------------------------------------------------------------------------- a server that stalls or trickles


def test_the_limits_give_up_on_a_stall_or_a_trickle_within_90_s():
    """The bound, from the constants: a stalled read ends after READ_S; a trickle is caught at the first read that
    ends after a window (WINDOW_S), and that read lasts at most READ_S. A stall is never retried on the same URL
    (test_a_server_that_stalls_after_4_kB_...: one request)."""
    assert transfer.GIVE_UP_S == transfer.WINDOW_S + transfer.READ_S < 90
    assert transfer.MIN_BYTES / transfer.WINDOW_S <= 1000  # a link at 1 kB/s still counts as alive
    assert issubclass(transfer.Stalled, requests.Timeout)  # what fetch gives up on a base for


def test_a_server_that_stalls_after_4_kB_is_named_and_the_next_url_serves(server, tmp_path):
    for f in MNIST_FILES:
        body = (server.root / "mnist" / f).read_bytes()
        server.faults[f"stall/{f}"] = lambda _, body=body: (200, body, 4096)
    r, wall = _fetch("MNIST", tmp_path / "data/raw", bases=(server.url + "stall/", server.url + "mnist/"))
    assert r.returncode == 0, r.stderr
    assert _warnings(r.stderr) == [f"WARNING MNIST: {MNIST_FILES[0]} from {server.url}stall/{MNIST_FILES[0]} failed: "
                                   "stalled: no byte for 2 s after 4 kB"]
    # one stall for the whole dataset: the stalled base is not asked again, for this file or the other three
    assert [p for _, p in server.requests if p.startswith("stall/")] == [f"stall/{MNIST_FILES[0]}"]
    assert wall < 2 + 20, wall  # READ_S, then the good URL (its 11.6 MB from 127.0.0.1 and the start: a few s)
    assert sorted(fetch.read_manifest(tmp_path / "data/raw/MNIST.json")["files"]) == sorted(sources.SOURCES["MNIST"].layouts[0])
    _intact(tmp_path / "data")


def test_a_stalled_server_with_no_other_url_ends_the_job_with_its_block(server, tmp_path):
    url = server.url + PATHS["USPS"]
    server.faults[PATHS["USPS"] + "zip.train.gz"] = lambda body: (200, body, 4096)
    r, wall = _fetch("USPS", tmp_path / "data/raw", bases=(url,))
    assert r.returncode == 2 and wall < 2 + 20, (wall, r.stderr)
    error = r.stderr[r.stderr.index("error: "):]
    stalled = "stalled: no byte for 2 s after 4 kB"
    assert error.startswith("error: USPS (2.3 MB) could not be downloaded:\n"
                            f"  zip.train.gz (1.8 MB):\n    {url}zip.train.gz: {stalled}\n"
                            f"  zip.test.gz (0.4 MB):\n    {url}zip.test.gz: not tried after {url}zip.train.gz: {stalled}\n")
    assert server.gets() == 1
    assert _nothing_under(tmp_path / "data/raw")
    _intact(tmp_path / "data")


def test_a_trickling_server_is_named_stalled_within_90_s_at_the_real_limits(server, tmp_path):
    """1 byte every 20 s, which no read timeout catches; the real limits (about 40 s here: the first read that
    ends after the 30 s window)."""
    server.faults["trickle/zip.train.gz"] = lambda _: (200, (server.root / PATHS["USPS"] / "zip.train.gz").read_bytes(), 0, 20)
    r, wall = _fetch("USPS", tmp_path / "data/raw", bases=(server.url + "trickle/", server.url + PATHS["USPS"]),
                     limits={"fetch.BACKOFF_S": 0.01}, timeout=100)
    assert r.returncode == 0, r.stderr
    assert _warnings(r.stderr) == [f"WARNING USPS: zip.train.gz from {server.url}trickle/zip.train.gz failed: "
                                   "stalled: under 30 kB in 30 s"]
    assert wall < 90, wall
    assert [p for _, p in server.requests if p.startswith("trickle/")] == ["trickle/zip.train.gz"]
    _intact(tmp_path / "data")


# ------------------------------------------------------------------------------- a mirror that refuses HEAD


@pytest.mark.parametrize("status", [405, 501, 403])
def test_a_server_that_refuses_head_is_asked_for_one_byte(server, status):
    server.head_status = status
    assert _within(30, fetch.probe, {"USPS": (server.url + PATHS["USPS"],)}) == {}
    assert sorted(m for m, _ in server.requests) == ["GET", "GET", "HEAD", "HEAD"]  # each file: HEAD, then 1 byte


def test_a_mirror_that_refuses_head_passes_the_start_up_check_and_the_run_downloads(server, tmp_path):
    wd = copy_workflow(tmp_path)
    smoke_params(wd, server.urls())
    server.head_status = 405
    r = subprocess.run(["snakemake", "--cores", "1", "data/raw/USPS.json"], cwd=wd, capture_output=True, text=True,
                       timeout=240, env={**os.environ, **NO_MIRROR})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "could not be downloaded" not in r.stderr
    assert ("HEAD", PATHS["USPS"] + "zip.test.gz") in server.requests
    _intact(wd / "data")


def test_a_check_that_fails_names_no_hooks_as_the_way_past_it(server, tmp_path):
    wd = copy_workflow(tmp_path)
    smoke_params(wd, {**server.urls(), "USPS": [server.url + "gone/"]})
    server.head_status = 405
    r = subprocess.run(["dcpipe", "check-params", "--local", "params.yaml"], cwd=wd, capture_output=True, text=True,
                       timeout=120, env={**os.environ, **NO_MIRROR})
    assert r.returncode == 2, r.stderr
    error = r.stderr[r.stderr.index("error: "):].splitlines()
    assert error[0] == "error: params.yaml: USPS (2.3 MB) could not be downloaded:"
    assert error[2] == f"    {server.url}gone/zip.train.gz: HTTP 404 File not found"
    assert error[-1] == ("If these URLs do serve the files, this check (a HEAD request, else a GET of the first byte) "
                         "is wrong: skip it with `snakemake --no-hooks` (or `dvc repro` for `make dvc-repro`).")
    assert not (wd / "data").exists()


# ------------------------------------------------------------------------------- a corrupt copy in the first mirror


def _two_mirrors(tmp_path, mirrors) -> tuple[Path, Path, str]:
    """A first mirror whose zip.test.gz has one byte flipped, a second with good copies; the bad copy's sha256."""
    import hashlib

    first, second = tmp_path / "mirror1", tmp_path / "mirror2"
    for rel, src in require_dataset("USPS", mirrors).items():
        for m in (first, second):
            (m / rel).parent.mkdir(parents=True, exist_ok=True)
            (m / rel).write_bytes(src.read_bytes())
    bad = first / "USPS_ESL/zip.test.gz"
    bad.write_bytes(_flipped(bad.read_bytes()))
    return first, second, hashlib.sha256(bad.read_bytes()).hexdigest()


def _bad_copy_line(first: Path, got: str) -> str:
    want = sources.CHECKSUMS["USPS_ESL/zip.test.gz"].split(":")[1]
    return (f"WARNING USPS: {first}/USPS_ESL/zip.test.gz: checksum mismatch: sha256 {got}, expected {want}: the file "
            f"is truncated or corrupt; replace it with a fresh copy; trying the next source")


def test_a_corrupt_copy_in_the_first_mirror_is_logged_and_the_second_mirror_serves(tmp_path, mirrors):
    first, second, got = _two_mirrors(tmp_path, mirrors)
    r, _ = _fetch("USPS", tmp_path / "data/raw", mirrors=(first, second), download=False)
    assert r.returncode == 0, r.stderr
    assert _warnings(r.stderr) == [_bad_copy_line(first, got)]
    assert f"INFO USPS: 2 files copied from mirror {second}, checksums ok" in r.stderr.splitlines()
    _intact(tmp_path / "data")
    assert (tmp_path / "data/raw/USPS.json").is_file()


def test_a_corrupt_copy_in_the_only_mirror_is_logged_and_the_urls_serve(server, tmp_path, mirrors):
    first, _, got = _two_mirrors(tmp_path, mirrors)
    r, _ = _fetch("USPS", tmp_path / "data/raw", bases=(server.url + PATHS["USPS"],), mirrors=(first,))
    assert r.returncode == 0, r.stderr
    assert _warnings(r.stderr) == [_bad_copy_line(first, got)]
    assert server.gets() == 2
    _intact(tmp_path / "data")


# ------------------------------------------------------------------------------- a byte flipped in data/raw


def _snakemake(wd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["snakemake", *args], cwd=wd, capture_output=True, text=True, timeout=240,
                          env={**os.environ, **NO_MIRROR})


def test_a_byte_flipped_in_data_raw_is_fetched_again_by_the_command_prepare_data_names(server, tmp_path):
    import hashlib

    wd = copy_workflow(tmp_path)
    smoke_params(wd, server.urls())
    target = "data/prepared/USPS_RGB32.npz"
    assert _snakemake(wd, "--cores", "1", target).returncode == 0
    good = dict(np.load(wd / target))
    raw = wd / "data/raw/USPS_ESL/zip.test.gz"
    raw.write_bytes(_flipped(raw.read_bytes()))
    got = hashlib.sha256(raw.read_bytes()).hexdigest()
    want = sources.CHECKSUMS["USPS_ESL/zip.test.gz"].split(":")[1]

    r = _snakemake(wd, "--cores", "1", "-f", target)  # deletes the good .npz, then prepare_data meets the bad file
    assert r.returncode != 0 and not (wd / target).exists()
    (line,) = [s for s in (wd / "logs/prepare_data/USPS_RGB32.log").read_text().splitlines() if s.startswith("error: ")]
    assert line == (f"error: data/raw/USPS_ESL/zip.test.gz: checksum mismatch (sha256 {got}, expected {want}): the file "
                    "changed after its download; fetch it again: snakemake --cores 1 -f data/raw/USPS.json")

    server.requests.clear()
    command = line.split("fetch it again: ")[1].split()
    r = _snakemake(wd, *command[1:])  # the command as the error names it
    assert r.returncode == 0, r.stderr[-3000:]
    log = (wd / "logs/download/USPS.log").read_text()
    assert log.count("WARNING") == 1 and (f"dcpipe.fetch WARNING USPS: data/raw/USPS_ESL/zip.test.gz: checksum mismatch: "
                                          f"sha256 {got}, expected {want}; fetching it again") in log
    assert [(m, p) for m, p in server.requests if m == "GET"] == [("GET", PATHS["USPS"] + "zip.test.gz")]  # that file alone

    assert _snakemake(wd, "--cores", "1", target).returncode == 0  # the plain rerun recovers
    ours = np.load(wd / target)
    assert all(ours[k].tobytes() == v.tobytes() for k, v in good.items())
    _intact(wd / "data")
