"""What a machine lacks is found at planning time: data that can't be had and CUDA that isn't there are warned
about by check-params and dry runs, and a real run stops before any job."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.stage_runs import ROOT, _DELETE, stage_env, tiny_params


# --- data no mirror holds: warned about by check-params and dry runs, a real run stops before any job ---------

@pytest.fixture(scope="module")
def svhn_workdir(tmp_path_factory):
    """A copy of the workflow whose plan needs SVHN, with DCPIPE_DATA_MIRRORS an empty folder (no data faked)."""
    wd = tmp_path_factory.mktemp("svhn")
    for name in ("Snakefile", "workflow", "reports/records"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, wd / name)
    (wd / "empty-mirror").mkdir()
    p = tiny_params(**{"experiment.datasets": ["SVHN"], "experiment.methods": ["DC"], "coresets": _DELETE,
                       "evaluate.augment_datasets": [], "data.mirrors": [], "data.download": False})
    (wd / "params.yaml").write_text(yaml.safe_dump(p))
    return wd


def _run_in(wd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = stage_env(DCPIPE_DATA_MIRRORS=str(wd / "empty-mirror"))
    return subprocess.run(list(cmd), cwd=wd, env=env, capture_output=True, text=True, timeout=120)


def _says_what_is_missing(text: str, wd: Path) -> bool:
    return all(f in text for f in (
        "params.yaml: the plan needs datasets that no mirror holds, so their download jobs cannot run:",
        "dataset SVHN not found offline, and data.download is false.",
        "Needed files: SVHN/train_32x32.mat, SVHN/test_32x32.mat", f"    - {wd}/empty-mirror\n",
        "How to get it: set data.download: true (downloads 246.3 MB from http://ufldl.stanford.edu/housenumbers/)"))


def test_check_params_warns_about_data_no_mirror_holds_and_still_passes(svhn_workdir):
    r = _run_in(svhn_workdir, sys.executable, "-m", "dcpipe.cli", "check-params", "params.yaml")
    assert r.returncode == 0, r.stderr                     # the parameters themselves are valid
    assert r.stderr.startswith("warning: params.yaml: the plan needs datasets"), r.stderr
    assert _says_what_is_missing(r.stderr, svhn_workdir), r.stderr
    assert r.stdout == "params.yaml: ok\n"


def test_check_params_local_makes_missing_data_an_error_for_runs_on_this_machine(svhn_workdir):
    r = _run_in(svhn_workdir, sys.executable, "-m", "dcpipe.cli", "check-params", "--local", "params.yaml")
    assert r.returncode == 2 and r.stdout == "", r.stdout + r.stderr
    assert r.stderr.startswith("error: params.yaml: the plan needs datasets"), r.stderr
    assert _says_what_is_missing(r.stderr, svhn_workdir), r.stderr


def test_check_params_only_warns_about_cuda_a_head_node_may_lack(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(tiny_params(**{"runtime.device": "cuda", "experiment.datasets": ["MNIST"]})))
    r = subprocess.run([sys.executable, "-m", "dcpipe.cli", "check-params", str(f)], capture_output=True, text=True,
                       env=stage_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
    assert r.returncode == 0, r.stderr
    assert (f"warning: {f}: runtime.device is 'cuda' but torch.cuda.is_available() is False on this machine; use "
            f"'auto' or 'cpu'") in r.stderr


def test_a_dry_run_warns_about_data_no_mirror_holds_and_still_shows_the_plan(svhn_workdir):
    r = _run_in(svhn_workdir, "snakemake", "-n", "--cores", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: params.yaml: the plan needs datasets" in r.stderr and _says_what_is_missing(r.stderr, svhn_workdir)
    assert re.search(r"^download\s+1$", r.stdout, re.M) and re.search(r"^prepare_data\s+1$", r.stdout, re.M), r.stdout
    assert "This was a dry-run" in r.stdout, r.stdout
    assert not (svhn_workdir / "logs").exists()


def test_a_real_run_stops_before_any_job_when_a_mirror_lacks_planned_data(svhn_workdir):
    r = _run_in(svhn_workdir, "snakemake", "--cores", "1")
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "error: params.yaml: the plan needs datasets" in r.stderr and _says_what_is_missing(r.stderr, svhn_workdir)
    assert "Traceback" not in out and "warning:" not in out, out
    assert not (svhn_workdir / "logs").exists() and not (svhn_workdir / "data").exists()  # no job started


@pytest.fixture(scope="module")
def cuda_workdir(tmp_path_factory, mirrors):
    """A copy of the workflow whose parameters ask for runtime.device: cuda, the data in the local mirror."""
    wd = tmp_path_factory.mktemp("cuda")
    for name in ("Snakefile", "workflow", "reports/records"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, wd / name)
    p = tiny_params(**{"experiment.datasets": ["MNIST"], "experiment.methods": ["DC"], "coresets": _DELETE,
                       "evaluate.augment_datasets": [], "data.mirrors": [str(m) for m in mirrors],
                       "data.download": False, "runtime.device": "cuda"})
    (wd / "params.yaml").write_text(yaml.safe_dump(p))
    return wd


CUDA_AT_PLANNING = ("params.yaml: runtime.device is 'cuda' but torch.cuda.is_available() is False on this machine; "
                    "use 'auto' or 'cpu'; if the GPU jobs run on another host that has CUDA (a cluster job), run "
                    "snakemake there or pass --no-hooks (each GPU job still checks at its start)")


def test_a_dry_run_on_a_machine_without_cuda_warns_and_shows_the_plan(cuda_workdir):
    r = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=cuda_workdir, capture_output=True, text=True,
                       env=stage_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"warning: {CUDA_AT_PLANNING}\n" in r.stderr, r.stderr
    assert re.search(r"^condense\s+1$", r.stdout, re.M) and "This was a dry-run" in r.stdout, r.stdout


def test_a_real_run_on_a_machine_without_cuda_stops_before_any_job(cuda_workdir):
    r = subprocess.run(["snakemake", "--cores", "1"], cwd=cuda_workdir, capture_output=True, text=True,
                       env=stage_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert [line for line in r.stderr.splitlines() if line.startswith("error: ")] == [f"error: {CUDA_AT_PLANNING}"], out
    assert "Traceback" not in out
    assert not (cuda_workdir / "logs").exists() and not (cuda_workdir / "data").exists()  # no job started


def test_snakemake_reports_a_bad_parameter_file_as_one_error_line(svhn_workdir):
    (svhn_workdir / "twice.yaml").write_text("seed: 0\n" + (svhn_workdir / "params.yaml").read_text())
    r = _run_in(svhn_workdir, "snakemake", "-n", "--cores", "1", "--config", "params=twice.yaml")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "error: twice.yaml: duplicate key 'seed' at line" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert 'File "' not in r.stderr, r.stderr  # not Snakemake's traceback of the Snakefile


def test_the_data_check_covers_continual_tasks_and_the_nas_dataset_once_per_source(tmp_path, monkeypatch):
    from dcpipe import plan
    from dcpipe.config import load_params

    paper = load_params(ROOT / "config/paper.yaml")
    planned = plan.prepared_datasets(paper)
    assert {"MNIST_RGB32", "USPS_RGB32", paper["nas"]["dataset"]} <= set(planned)
    assert not [d for d in planned if d.endswith("_nas")]  # the search split is made by nas_split, not prepared
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCPIPE_DATA_MIRRORS", str(tmp_path))
    paper["data"]["mirrors"] = []
    plans = plan.fetch_plans(paper)
    assert sorted(p.dataset for p in plans) == sorted({d.removesuffix("_RGB32") for d in planned})  # MNIST once
    assert {p.where for p in plans} == {"download"}


def test_a_prepared_dataset_needs_no_source_files(tmp_path, monkeypatch):
    """A unit test with a fake prepared dataset: only the presence of data/prepared/SVHN.npz(.json) matters."""
    from dcpipe.plan import fetch_plans

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCPIPE_DATA_MIRRORS", str(tmp_path))
    p = tiny_params(**{"experiment.datasets": ["SVHN"], "experiment.methods": ["DC"], "coresets": _DELETE,
                       "data.mirrors": [], "data.download": False})
    assert [(x.dataset, x.where) for x in fetch_plans(p)] == [("SVHN", "missing")]
    (tmp_path / "data/prepared").mkdir(parents=True)
    for name in ("SVHN.npz", "SVHN.npz.json"):
        (tmp_path / "data/prepared" / name).write_bytes(b"fake")
    assert fetch_plans(p) == []
    assert [x.dataset for x in fetch_plans(p, ["SVHN"])] == ["SVHN"]  # asked explicitly: its sources
