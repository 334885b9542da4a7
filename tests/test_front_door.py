"""The front door: on a fresh clone, with no extra flags, `snakemake -n` and `dvc repro --dry` plan the whole DAG
(for params.yaml and for config/paper.yaml), and nothing committed makes either runner think work is done."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run

BIN = Path(sys.executable).parent  # the venv's snakemake and dvc


def output(cmd, cwd) -> str:
    """Both streams of a command that must succeed (conftest.run raises with their tail otherwise)."""
    res = run(cmd, cwd)
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of the committed repository (what a new user, and CI, gets)."""
    dest = tmp_path_factory.mktemp("fresh") / "dcpipe"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    return dest


def snakemake_total(out: str) -> int:
    return int(re.search(r"^total\s+(\d+)$", out, re.M).group(1))


def dvc_stage_count(dvc_yaml: Path) -> int:
    return len(yaml.safe_load(dvc_yaml.read_text())["stages"])


def test_fresh_clone_commits_no_dag_output(clone):
    """reports/ holds only hand-run records: no output of the report rule is committed."""
    committed = subprocess.run(["git", "ls-files", "reports"], cwd=clone, capture_output=True, text=True).stdout.split()
    assert committed, "reports/records is expected in git"
    assert all(p.startswith("reports/records/") for p in committed), committed


@pytest.mark.parametrize("params_file", ["params.yaml", "config/paper.yaml"])
def test_snakemake_dry_run_plans_the_whole_dag(clone, params_file):
    """`snakemake -n` plans every job of the DAG, the same jobs the generated dvc.yaml has (+ the `all` target)."""
    from dcpipe.dvcgen import snakemake_jobs

    out = output([BIN / "snakemake", "-n", "--config", f"params={params_file}"], clone)
    assert "Nothing to be done" not in out
    assert snakemake_total(out) == len(snakemake_jobs(clone / "Snakefile", params_file)) + 1
    assert not (clone / "data" / "prepared").exists() and not (clone / "logs").exists()  # planned, nothing ran


def test_dvc_dry_run_plans_every_stage(clone):
    """`dvc repro --dry` on the committed dvc.yaml lists every stage (DVC's own run-cache lookup used to stop at the
    first stage whose input another stage makes: dcpipe.dvc_dry_run, installed by `make setup`)."""
    out = output([BIN / "dvc", "repro", "--dry"], clone)
    planned = re.findall(r"^Running stage '([^']+)'", out, re.M)
    assert len(planned) == dvc_stage_count(clone / "dvc.yaml")
    assert not (clone / "data" / "prepared").exists()


@pytest.mark.slow
def test_dvc_dry_run_plans_the_paper_protocol(clone, tmp_path):
    """config/paper.yaml through DVC: regenerate dvc.yaml for it (docs/remotes-and-clusters.md), then the dry run
    lists every stage."""
    paper = tmp_path / "paper-clone"
    subprocess.run(["git", "clone", "-q", str(clone), str(paper)], check=True)
    run([BIN / "dcpipe", "dvc-yaml", "--params", "config/paper.yaml"], paper)
    out = output([BIN / "dvc", "repro", "--dry"], paper)
    planned = re.findall(r"^Running stage '([^']+)'", out, re.M)
    assert len(planned) == dvc_stage_count(paper / "dvc.yaml") > 500
