"""Faults met while a run goes: its parameter file edited, a mirror that goes away under a copy, and clocks that
disagree between the machine that plans and the machines that run the jobs. Real stage processes and real
Snakemake runs on real MNIST from the local mirror, each in its own folder."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import DELETE
from tests.stage_runs import ROOT, SCRIPTS, stage_env, tiny_params

LABELS = "MNIST/raw/t10k-labels-idx1-ubyte"


def errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error: ")]


# --- a parameter file edited while its run goes ----------------------------------------------------------------

def test_only_a_change_of_values_counts_as_an_edit_after_planning(tmp_path):
    from dcpipe.config import ParamsError, check_planned, load_params, planned_params

    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(tiny_params()))
    planned = planned_params(load_params(f), f)
    f.write_text("# the next run's notes\n" + yaml.safe_dump(tiny_params(), default_flow_style=True))
    check_planned(load_params(f), f, planned)              # comments and layout: the same values
    check_planned(load_params(f), tmp_path / "other.yaml", planned)  # a run of another file: not this one's plan
    f.write_text(yaml.safe_dump(tiny_params(**{"condense.lr_img": 0.2})))
    with pytest.raises(ParamsError, match=rf"^{f}: changed after this run was planned \(values [0-9a-f]{{16}} then, "):
        check_planned(load_params(f), f, planned)


@pytest.fixture
def workdir(tmp_path, mirrors):
    """A copy of the workflow planning MNIST only, the data in the local mirror."""
    for name in ("Snakefile", "workflow", "reports/records"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    p = tiny_params(**{"experiment.datasets": ["MNIST"], "experiment.methods": ["DC"], "coresets": DELETE,
                       "evaluate.augment_datasets": [], "data.mirrors": [str(m) for m in mirrors],
                       "data.download": False})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    return tmp_path


def snakemake(wd: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["snakemake", "--cores", "1", *args], cwd=wd, capture_output=True, text=True,
                          env=stage_env(**env), timeout=300)


def test_a_job_whose_params_file_changed_after_planning_is_refused(workdir):
    """Snakemake's onstart records the planned values for its jobs (kept where the environment has them, as a
    cluster job's own Snakemake gets the head node's); a job started after an edit refuses, before any work."""
    from dcpipe.config import PLANNED_PARAMS

    r = snakemake(workdir, "data/raw/MNIST.json", **{PLANNED_PARAMS: f"0123456789abcdef {workdir / 'params.yaml'}"})
    assert r.returncode != 0, r.stdout + r.stderr
    log = (workdir / "logs/download/MNIST.log").read_text()
    (line,) = errors(log)
    assert re.fullmatch(r"error: params\.yaml: changed after this run was planned \(values 0123456789abcdef then, "
                        r"[0-9a-f]{16} now\); its jobs must all use one version: restore the file, or stop the run "
                        r"and start it again to plan from the new values", line), log
    assert not (workdir / "data/raw").exists() or not any((workdir / "data/raw").rglob("*"))

    r = snakemake(workdir, "data/raw/MNIST.json")        # unchanged: the values onstart records are the job's
    assert r.returncode == 0, r.stdout + r.stderr
    assert (workdir / "data/raw/MNIST.json").is_file()


# --- a mirror that goes away under the copy -------------------------------------------------------------------

# The download stage with fetch.in_mirror wrapped: once the mirror is found, the labels file is made to vanish.
VANISH = """
import os, runpy, sys, threading
from pathlib import Path
from dcpipe import fetch

mode, script, *args = sys.argv[1:]
found_in_mirror = fetch.in_mirror

def in_mirror(layout, mirrors, quick=False):
    hit = found_in_mirror(layout, mirrors, quick)
    if hit and not quick:
        f = hit[1][{labels!r}]
        data = f.read_bytes()
        f.unlink()
        if mode == "cut-short":  # a pipe in its place, closed half-way: a connection that drops mid-read
            os.mkfifo(f)
            def serve():
                with open(f, "wb") as w:
                    w.write(data[: len(data) // 2])
            threading.Thread(target=serve, daemon=True).start()
    return hit

fetch.in_mirror = in_mirror
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
""".format(labels=LABELS)


@pytest.mark.parametrize("mode", ["removed", "cut-short"])
def test_a_mirror_file_that_vanishes_mid_copy_is_one_error_and_nothing_reaches_data_raw(mode, tmp_path, mirrors):
    from tests.conftest import require_dataset

    mirror = tmp_path / "mirror"
    for rel, src in require_dataset("MNIST", mirrors).items():
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).symlink_to(src)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(**{"experiment.datasets": ["MNIST"], "data.mirrors": [str(mirror)],
                                                    "data.download": False})))
    cmd = [sys.executable, "-c", VANISH, mode, str(SCRIPTS / "download.py"), "--params", str(params),
           "--dataset", "MNIST", "--out", "data/raw/MNIST.json"]
    r = subprocess.run(cmd, cwd=tmp_path, env=stage_env(DCPIPE_DATA_MIRRORS=""), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    first = {"removed": f"error: {mirror}/{LABELS}: disappeared from the mirror while it was copied (No such file or "
                        f"directory); check that the mirror is there (a network file system that went away?) and "
                        f"rerun the download job",
             "cut-short": f"error: {mirror}/{LABELS}: checksum mismatch: "}[mode]
    (line,) = errors(r.stderr)
    assert line.startswith(first), r.stderr
    assert mode == "removed" or line.endswith(": the file is truncated or corrupt; replace it with a fresh copy")
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]  # no partial copy, no manifest
    assert not (tmp_path / "data/.download").exists()


# --- clocks that disagree: Snakemake decides reruns by comparing a job's output mtimes with its inputs' ----------

def test_clock_skew_between_nodes_what_snakemake_plans(workdir):
    """What holds when the node that wrote a file has its clock ahead of, or behind, the one that plans. Snakemake
    reruns a job whose input is newer than its output, unless the input's content is the one it recorded (it keeps
    a checksum of small inputs, such as the download manifest prepare_data reads):
    - outputs dated in the future (every job's node ahead): nothing is rerun;
    - an input dated after its output but unchanged: nothing is rerun either (skew alone costs nothing);
    - an input changed and dated after its output: the job reruns;
    - an input changed by a node whose clock is behind its output's writer: Snakemake sees nothing new and keeps
      the old output. Keep the clocks in sync (NTP), or force the rerun: `snakemake -R <rule>`."""
    assert snakemake(workdir, "data/prepared/MNIST.npz").returncode == 0
    raw, npz = workdir / "data/raw/MNIST.json", workdir / "data/prepared/MNIST.npz"
    day, now = 24 * 3600, time.time()

    def plan() -> str:
        r = snakemake(workdir, "-n", "data/prepared/MNIST.npz")
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def reruns_prepare_data() -> bool:
        planned = plan()
        assert not re.search(r"^download\s+1$", planned, re.M), planned
        return bool(re.search(r"^prepare_data\s+1$", planned, re.M))

    for p in (workdir / "data").rglob("*"):
        if p.is_file():
            os.utime(p, (now + day, now + day))
    assert "Nothing to be done" in plan()

    os.utime(raw, (now + 2 * day, now + 2 * day))  # the download's node ahead of prepare_data's
    assert not reruns_prepare_data()

    raw.write_text(raw.read_text() + "\n")         # changed, and newer than the prepared set
    os.utime(raw, (now + 2 * day, now + 2 * day))
    assert reruns_prepare_data()

    os.utime(raw, (now, now))                      # changed by a node behind the one that wrote the output
    assert not reruns_prepare_data()
