"""A full disk or a read-only output folder: a real condense job and a real `dcpipe score` on a small tmpfs.

The job stops with one `error:` line naming the path, the checkpoint it had is kept whole, and once space is freed
the rerun ends identical to an uninterrupted run. A folder that cannot be written is found before any work.
Mounting needs root: elsewhere these tests skip, never under CI=true.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.stage_runs import PROGRESS_LINE, SCRIPTS, stage_env, tiny_params

KEPT = "then rerun the job (files already written, checkpoints included, are kept)"
TIMING = {"wall_seconds", "seconds_per_iteration", "set_seconds", "random_seconds", "peak_memory", "provenance"}


def _cannot_mount(why: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: the tmpfs fault tests must run ({why})")
    pytest.skip(why)


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str):
    """A tmpfs of `size` mounted at `where` for the block, unmounted after it whatever happens."""
    if os.geteuid() != 0:
        _cannot_mount("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        _cannot_mount(f"mount -t tmpfs failed: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def fill(folder: Path, leave: int) -> Path:
    """A filler file that leaves `leave` bytes free in `folder`'s file system (0: fill it to the last block)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        f.write(b"\0" * max(0, free_bytes(folder) - leave))
        with contextlib.suppress(OSError):  # up to the last block, where leave is 0
            while leave == 0:
                f.write(b"\0" * 4096)
    return filler


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def without_timing(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING}


def same_arrays(a: Path, b: Path) -> bool:
    with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
        return sorted(za.files) == sorted(zb.files) and all(np.array_equal(za[k], zb[k]) for k in za.files)


def test_condense_on_a_full_disk_stops_keeps_its_checkpoint_and_resumes_identical(tmp_path, prepared):
    from safetensors import safe_open
    from safetensors.torch import load_file

    mnist = prepared("MNIST")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))  # 12 iterations, a checkpoint every 2

    def condense(out: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(SCRIPTS / "condense.py"), "--params", str(params), "--dataset", "MNIST",
               "--ipc", "1", "--set", "0", "--prepared", str(mnist), "--out", str(out),
               "--loss", str(out.with_name("DC_set0_loss.csv"))]
        return subprocess.run(cmd, cwd=tmp_path, env=stage_env(), capture_output=True, text=True, timeout=300)

    ref = tmp_path / "ref" / "DC_set0.npz"
    assert condense(ref).returncode == 0

    with tmpfs(tmp_path / "disk", "1M") as disk:
        out = disk / "condensed" / "DC_set0.npz"
        ckpt = Path(str(out) + ".ckpt.safetensors")
        # a checkpoint is ~64 kB (images and their momentum): room for the first, not for the second beside it
        filler = fill(disk, leave=96 * 1024)
        full = condense(out)
        print("full disk:", full.returncode, errors(full.stderr))
        assert full.returncode == 2, full.stderr
        assert errors(full.stderr) == [f"error: {ckpt}: could not be written: no space left on device; free space "
                                       f"on its file system, {KEPT}"], full.stderr
        assert "Traceback" not in full.stderr
        assert sorted(p.name for p in out.parent.iterdir()) == [ckpt.name]  # no temporary, no partial output
        with safe_open(str(ckpt), "pt") as f:
            assert f.metadata()["next_iteration"] == "2"                  # the earlier checkpoint, whole
        assert load_file(str(ckpt))["syn"].shape == (10, 1, 28, 28)

        filler.unlink()                                                    # space freed: the rerun resumes
        resumed = condense(out)
        assert resumed.returncode == 0, resumed.stderr
        assert f"resuming from {ckpt} at iteration 2" in resumed.stderr
        assert same_arrays(out, ref)
        assert out.with_name("DC_set0_loss.csv").read_bytes() == ref.with_name("DC_set0_loss.csv").read_bytes()
        assert without_timing(Path(str(out) + ".json")) == without_timing(Path(str(ref) + ".json"))
        assert sorted(p.name for p in out.parent.iterdir()) == ["DC_set0.npz", "DC_set0.npz.json", "DC_set0_loss.csv"]


def test_score_refuses_a_read_only_or_full_output_folder_before_training_and_scores_once_freed(tmp_path, prepared):
    mnist = prepared("MNIST")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(score={"models": 1, "epochs": 1, "random_baseline": False})))
    scored = tmp_path / "DC_set0.npz"
    rng = np.random.default_rng(0)
    np.savez(scored, images=rng.normal(size=(10, 1, 28, 28)).astype(np.float32), labels=np.arange(10))

    def score(out: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "dcpipe.cli", "score", str(scored), "--dataset", "MNIST", "--params", str(params),
               "--prepared", str(mnist), "--out", str(out)]
        return subprocess.run(cmd, cwd=tmp_path, env=stage_env(), capture_output=True, text=True, timeout=300)

    ref = tmp_path / "ref" / "score.json"
    assert score(ref).returncode == 0

    with tmpfs(tmp_path / "ro", "1M", "ro") as ro:
        r = score(ro / "x.json")
        print("read-only:", r.returncode, errors(r.stderr))
        assert r.returncode == 2, r.stderr
        assert errors(r.stderr) == [f"error: {ro}: the output folder cannot be written: read-only file system; write "
                                    f"it to a writable file system, then rerun (nothing was started)"], r.stderr
        assert not PROGRESS_LINE.search(r.stderr) and "Traceback" not in r.stderr  # no network trained

    with tmpfs(tmp_path / "disk", "1M") as disk:
        filler = fill(disk, leave=0)
        out = disk / "scores" / "x.json"
        r = score(out)
        print("full disk:", r.returncode, errors(r.stderr))
        assert r.returncode == 2, r.stderr
        assert errors(r.stderr) == [f"error: {out.parent}: the output folder cannot be written: no space left on "
                                    f"device; free space on its file system, then rerun (nothing was started)"], r.stderr
        assert not PROGRESS_LINE.search(r.stderr)
        assert not out.exists()
        filler.unlink()
        r = score(out)
        assert r.returncode == 0, r.stderr
        assert without_timing(out) == without_timing(ref)


# --- the same faults without a mount: what every write meets ----------------------------------------------------

def test_a_write_that_finds_the_disk_full_names_its_file_and_keeps_the_old_one(tmp_path):
    import errno

    from dcpipe.errors import OutputError
    from dcpipe.io import atomic_path

    ckpt = tmp_path / "DC_set0.npz.ckpt.safetensors"
    ckpt.write_bytes(b"the previous checkpoint")
    with pytest.raises(OutputError) as full:
        with atomic_path(ckpt) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")  # as write() raises it: no file named
    assert str(full.value) == f"{ckpt}: could not be written: no space left on device; free space on its file system, {KEPT}"
    assert ckpt.read_bytes() == b"the previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.name]  # no temporary left


def test_a_library_that_says_the_disk_is_full_in_words_is_understood(capsys):
    from safetensors import SafetensorError

    from dcpipe.io import unwritable_reason
    from dcpipe.runtime import stage_errors

    assert unwritable_reason(SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                             "message: \"No space left on device\" })")) == "no space left on device"
    assert unwritable_reason(ValueError("bad value")) is None
    with pytest.raises(SystemExit) as stopped:
        with stage_errors():
            raise OSError(30, "Read-only file system", "/srv/shared/eval/x.json")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == ("error: /srv/shared/eval/x.json: could not be written: read-only file system; free "
                                       "space or make the folder writable, then rerun the job (files already written, "
                                       "checkpoints included, are kept)\n")
