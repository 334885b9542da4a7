"""The front door: on a fresh clone, `snakemake -n` and `dvc repro --dry --force-downstream` plan the whole DAG (for
params.yaml and for config/paper.yaml) with the DVC that pip installs, unpatched, and nothing committed makes either
runner think work is done."""

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


DRY = ["repro", "--dry", "--force-downstream"]


def test_dvc_dry_run_plans_every_stage(clone):
    """`dvc repro --dry --force-downstream` on the committed dvc.yaml lists every stage. A plain `--dry` stops at the
    first stage whose input another stage makes (DVC looks each changed stage up in its run cache, hashing inputs
    that do not exist yet: treeverse/dvc#9818); below a changed stage, --force-downstream skips that lookup."""
    assert ".pth" not in (ROOT / "Makefile").read_text()  # the set-up patches nothing in the environment
    out = output([BIN / "dvc", *DRY], clone)
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
    out = output([BIN / "dvc", *DRY], paper)
    planned = re.findall(r"^Running stage '([^']+)'", out, re.M)
    assert len(planned) == dvc_stage_count(paper / "dvc.yaml") > 500
