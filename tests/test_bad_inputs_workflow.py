"""Faults of the workflow around the stages (tests/test_bad_inputs.py has the stages' own): a path with a space or
non-ASCII characters, a healthy dry run's console, a plan too large to plan quickly, and a bad parameter file
under a plain `dvc repro`. Each runs the real tools in a copy of the workflow; the checkout's data/ is never
touched."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_workflow, require_dataset
from tests.stage_runs import ROOT, _DELETE, stage_env, tiny_params


def _run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, cmd)), cwd=cwd, env=stage_env(), capture_output=True, text=True,
                          timeout=timeout)


def _usps_params(mirrors) -> dict:
    """The tiny plan on USPS alone (the smallest dataset: its download and preparation take seconds)."""
    return tiny_params(**{"experiment.datasets": ["USPS"], "experiment.methods": ["DC"], "coresets": _DELETE,
                          "evaluate.augment_datasets": [], "data.mirrors": [str(m) for m in mirrors],
                          "data.download": False})


# --- a parameter file and a checkout whose paths hold a space and non-ASCII characters --------------------------

@pytest.fixture(scope="module")
def odd_paths(tmp_path_factory, mirrors) -> tuple[Path, Path]:
    """(a copy of the workflow in `my chéckout/`, a parameter file `my pàrams/p ü.yaml` outside it)."""
    require_dataset("USPS", mirrors)
    base = tmp_path_factory.mktemp("odd")
    wd = copy_workflow(base / "my chéckout")
    params = base / "my pàrams" / "p ü.yaml"
    params.parent.mkdir()
    params.write_text(yaml.safe_dump(_usps_params(mirrors)))
    return wd, params


def test_a_dry_run_quotes_a_params_path_with_a_space_and_non_ascii_characters(odd_paths):
    wd, params = odd_paths
    r = _run(["snakemake", "-n", "-p", "--cores", "1", "--config", f"params={params}"], wd)
    assert r.returncode == 0, r.stdout + r.stderr
    commands = re.findall(r"python workflow/scripts/.*", r.stdout)
    assert len(commands) == 5, r.stdout  # download, prepare_data, condense, evaluate, report
    assert all(f"--params '{params}'" in c for c in commands), commands  # one argument, quoted for the shell


def test_real_jobs_run_in_a_checkout_and_on_a_params_file_whose_paths_hold_spaces(odd_paths):
    """The download (from the local mirror) and the preparation of USPS: the stage scripts' command lines as the
    rules write them, run by Snakemake's shell."""
    wd, params = odd_paths
    r = _run(["snakemake", "--cores", "1", "data/prepared/USPS.npz", "--config", f"params={params}"], wd)
    assert r.returncode == 0, r.stdout + r.stderr + "".join(p.read_text() for p in (wd / "logs").rglob("*.log"))
    assert (wd / "data/prepared/USPS.npz").is_file() and (wd / "data/prepared/USPS.npz.json").is_file()
    assert "Got unexpected extra argument" not in (wd / "logs/prepare_data/USPS.log").read_text()


# --- a healthy dry run prints no traceback; check-params counts the jobs Snakemake plans --------------------------

PLANS = ["params.yaml", "config/paper.yaml", ".test/params.yaml"]


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """`snakemake -n` of each shipped parameter file, in a copy of the workflow (nothing made yet)."""
    wd = copy_workflow(tmp_path_factory.mktemp("dry"))
    shutil.copytree(ROOT / "config", wd / "config")
    (wd / ".test").mkdir()
    shutil.copy(ROOT / ".test/params.yaml", wd / ".test/params.yaml")
    shutil.copy(ROOT / "params.yaml", wd / "params.yaml")
    return {f: _run(["snakemake", "-n", "--cores", "1", "--config", f"params={f}"], wd) for f in PLANS}


@pytest.mark.parametrize("params_file", PLANS)
def test_a_healthy_dry_run_prints_no_traceback(dry_runs, params_file):
    r = dry_runs[params_file]
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Traceback" not in out and "Exception" not in out, out  # e.g. prepare_data tried on the NAS search split


@pytest.mark.parametrize("params_file", PLANS)
def test_the_job_count_is_the_dry_runs(dry_runs, params_file):
    from dcpipe.config import load_params
    from dcpipe.plansize import job_counts

    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", dry_runs[params_file].stdout.split("Job stats:")[1], re.M))
    assert job_counts(load_params(ROOT / params_file)) == {rule: int(n) for rule, n in stats.items() if rule != "total"}


def test_check_params_warns_about_a_plan_snakemake_would_take_minutes_to_plan(tmp_path):
    from dcpipe.plansize import LARGE_PLAN

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["experiment"]["sets"] = 100_000
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = _run([sys.executable, "-m", "dcpipe.cli", "check-params", "params.yaml"], tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert LARGE_PLAN == 50_000
    assert r.stderr.splitlines()[0] == (
        "warning: params.yaml: the plan has 11,600,027 jobs (evaluate 4,300,000, condense 3,200,002, evaluate_cross "
        "2,500,000), more than 50,000: Snakemake alone would take minutes to plan them before its first line "
        "(docs/pipeline.md, Planning time); check experiment.sets and the studies' sets"), r.stderr
    assert r.stdout == "params.yaml: ok\n"


# --- a plain `dvc repro` on a parameter file with a typo: check-params' error on DVC's console -------------------

def test_dvc_repro_shows_the_stage_error_that_check_params_gives(tmp_path, mirrors):
    wd = copy_workflow(tmp_path)
    (wd / "params.yaml").write_text(yaml.safe_dump(tiny_params(**{
        "experiment.datasets": ["MNIST"], "experiment.methods": ["DC"], "coresets": _DELETE,
        "evaluate.augment_datasets": [], "data.mirrors": [str(m) for m in mirrors]})))
    assert _run(["dvc", "init", "--no-scm", "-q"], wd).returncode == 0
    generated = _run(["dcpipe", "dvc-yaml"], wd)
    assert generated.returncode == 0, generated.stderr
    text = (wd / "params.yaml").read_text()
    (wd / "params.yaml").write_text(text.replace("runtime:\n", "runtime:\n  thread: 1\n"))  # a typo of threads
    check = _run(["dcpipe", "check-params", "params.yaml"], wd)
    assert check.returncode == 2 and check.stderr.startswith("error: params.yaml: invalid parameters:\n"), check.stderr

    r = _run(["dvc", "repro"], wd)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert check.stderr in r.stderr, out                  # the same error block, on DVC's console
    assert "Traceback" not in out, out
    assert not (wd / "data").exists(), out                # the stage stopped before any work
