"""The smoke run's artifacts through DVC remotes and back: adopted into DVC (`dvc commit`), pushed to an SSH remote
(dvc-ssh, to an sshd on localhost that tests/cluster/sshd.sh starts and stops, with a throwaway key) and to a
local-directory remote, then pulled into fresh git clones, where `dvc status` and `snakemake -n` plan nothing
and every artifact is the same, byte for byte. A failure prints DVC's message and the sshd's log."""
from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import yaml

from tests.cluster.daemons import Daemons
from tests.conftest import ROOT, copy_workflow, run

pytestmark = pytest.mark.slow  # in `make test`: it reuses the session's smoke run


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = Daemons("sshd.sh", tmp_path_factory.mktemp("sshd"))
    print(d.start())
    d.port, d.key = int((d.state / "port").read_text()), d.state / "id_ed25519"
    yield d
    d.stop()


def dvc(args: list[str], cwd: Path, sshd=None) -> str:
    try:
        res = run(["dvc", *args], cwd)
    except AssertionError as e:  # DVC's message, and what the sshd saw
        raise AssertionError(f"{e}\n{sshd.logs() if sshd else ''}") from None
    return res.stdout + res.stderr


def outs(repo: Path) -> list[str]:
    """Every output recorded in dvc.lock (a directory output, reports/figures, as the files in it)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    paths = {o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])}
    files = set()
    for p in paths:
        d = repo / p
        files |= {str(f.relative_to(repo)) for f in d.rglob("*") if f.is_file()} if d.is_dir() else {p}
    return sorted(files)


def plans_nothing(clone: Path) -> None:
    """DVC first: every output there, with the hashes dvc.lock holds for this workflow's commands, inputs and
    params. Then Snakemake, which judges by modification times: `dvc pull` writes the files in no particular order
    (an input can be newer than its output), so, as docs/remotes-and-clusters.md says, `snakemake --touch` re-marks them
    current (in the DAG's order) once DVC has vouched for their contents; it would fail on a missing output."""
    status = dvc(["status"], clone)
    assert "Data and pipelines are up to date." in status, status
    run(["snakemake", "--touch", "--cores", "1"], clone)
    res = run(["snakemake", "-n"], clone)
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:] + res.stderr[-3000:]


@pytest.fixture(autouse=True, scope="module")
def _no_dvc_analytics():
    """This test's DVC calls report nothing (each would spawn a daemon that tries the network)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_NO_ANALYTICS", "1")
        yield


def test_the_smoke_runs_artifacts_round_trip_through_ssh_and_local_remotes(smoke_run, sshd, tmp_path):
    # 1. a git repository holding the workflow, with the smoke run's outputs; DVC adopts them and pushes them
    repo = copy_workflow(tmp_path / "repo")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")  # outputs stay out of git
    for name in ("data", "reports"):
        shutil.copytree(smoke_run / name, repo / name, dirs_exist_ok=True)
    run(["git", "init", "-q", "-b", "main"], repo)
    run("git config user.email test@dcpipe && git config user.name test", repo)
    dvc(["init", "-q"], repo)
    run(["dcpipe", "dvc-yaml"], repo)
    dvc(["commit", "-f", "-q"], repo)
    ssh_store, dir_store = tmp_path / "ssh-store", tmp_path / "dir-store"
    dvc(["remote", "add", "-d", "cluster", f"ssh://{sshd_user()}@127.0.0.1:{sshd.port}{ssh_store}"], repo)
    dvc(["remote", "add", "shared", str(dir_store)], repo)
    dvc(["remote", "modify", "--local", "cluster", "keyfile", str(sshd.key)], repo)  # .dvc/config.local: not in git
    run("git add -A && git commit -q -m 'workflow + dvc.lock'", repo)
    tracked = run(["git", "ls-files"], repo).stdout.split()
    artifacts = outs(repo)
    assert len(artifacts) > 50 and not set(artifacts) & set(tracked), "outputs must travel through DVC, not git"
    pushed = dvc(["push", "-r", "cluster"], repo, sshd)
    assert "pushed" in pushed, pushed
    assert "subsystem 'sftp'" in (sshd.state / "sshd.log").read_text(), "the push went through the sshd"
    dvc(["push", "-r", "shared"], repo)
    assert any(ssh_store.rglob("*")) and any(dir_store.rglob("*"))

    # 2. fresh clones pull them: one from the SSH remote, one from the directory remote into a shared cache
    for remote in ("cluster", "shared"):
        clone = tmp_path / f"clone-{remote}"
        run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
        assert not any((clone / a).exists() for a in artifacts)
        if remote == "cluster":
            dvc(["remote", "modify", "--local", "cluster", "keyfile", str(sshd.key)], clone)
        else:  # docs/remotes-and-clusters.md: a cache directory shared by a group of users
            dvc(["cache", "dir", "--local", str(tmp_path / "shared-cache")], clone)
            dvc(["config", "--local", "cache.shared", "group"], clone)
        dvc(["pull", "-r", remote], clone, sshd)

        # 3. nothing to do for either runner, and every artifact is the one pushed
        plans_nothing(clone)
        differ = [a for a in artifacts if (clone / a).read_bytes() != (repo / a).read_bytes()]
        assert not differ, f"pulled from {remote}, these differ from the pushed ones: {differ}"
    cache_dirs = [p for p in (tmp_path / "shared-cache").rglob("*") if p.is_dir()]
    assert cache_dirs and all(p.stat().st_mode & stat.S_IRWXG == stat.S_IRWXG for p in cache_dirs), \
        "cache.shared group: the group may write the cache"


def sshd_user() -> str:
    import getpass

    return getpass.getuser()
