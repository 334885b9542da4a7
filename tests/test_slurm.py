"""The smoke configuration through a real SLURM cluster: a one-node cluster on localhost (tests/cluster/slurm.sh:
its own munged, slurmctld and slurmd), the project's profile (workflow/profiles/slurm) and `--executor slurm`.

It shows that the jobs were really submitted (their sbatch ids in Snakemake's log and in slurmctld's log, a SLURM
log per job under logs/slurm/), that the outputs equal the local smoke run's (tests/conftest.py's smoke_run) bit
for bit, that `resources: gpu=1` becomes a GPU request, and that a job cancelled with `scancel` mid-way is
resubmitted by Snakemake and resumes from its checkpoint. Needs root (slurmd); it skips without, except under
CI=true. A failure prints Snakemake's output (the plugin's messages), the failing jobs' SLURM logs and the
daemons' logs. `make test-cluster` runs it; .ci/run does too.

The cluster has no slurmdbd, so the plugin's status command is `squeue` (--slurm-status-command squeue), and no
accounts. Where the node has no GPU, the GPU rules run with gpu=0 (no --gpus), after a first run shows that
gpu=1 is submitted as `--gpus=1`, which such a cluster refuses."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.cluster.daemons import Daemons
from tests.conftest import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "workflow/profiles/slurm"
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

CANCELLED_TARGET = "data/synthetic/FashionMNIST/ipc1/DC_set0.npz"  # the job the test cancels mid-way
CANCELLED_ITERATIONS = 10  # its iterations in that run (checkpoint every 2): long enough to catch it mid-way


# ---------------------------------------------------------------------------------------------------- the cluster
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = Daemons("slurm.sh", tmp_path_factory.mktemp("slurm"))
    print(d.start())
    # STATE/env: SLURM_CONF, and PATH with the srun shim first; then this environment's snakemake and python
    d.env = {**os.environ, "SLURM_CONF": str(d.state / "slurm.conf"),
             "PATH": os.pathsep.join([str(d.state / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]])}
    d.gpus = int((d.state / "gpus").read_text())
    d.ctld_log = d.state / "log/slurmctld.log"
    yield d
    d.stop()


def gpu_rules() -> list[str]:
    """The rules that declare `resources: gpu=...` (workflow/rules/*.smk)."""
    names = []
    for smk in sorted((ROOT / "workflow/rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            if m := re.match(r"\s*rule (\w+):", line):
                rule = m.group(1)
            elif rule and re.match(r"\s*gpu=", line):
                names.append(rule)
    return names


def profile_args(cluster, gpu: bool) -> list[str]:
    """The project's profile, plus what this test cluster needs: squeue as the status command (no slurmdbd), quick
    status checks, and (gpu=False) gpu=0 for the GPU rules. --set-resources on the command line replaces the
    profile's, so the profile's own entries are repeated. It takes every word after it: targets go before these."""
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    sets = {rule: dict(res) for rule, res in prof.get("set-resources", {}).items()}
    if not gpu:
        for rule in gpu_rules():
            sets.setdefault(rule, {})["gpu"] = 0
    args = ["--profile", str(PROFILE), "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "1"]
    if sets:
        args += ["--set-resources"] + [f"{rule}:{k}={v}" for rule, res in sets.items() for k, v in res.items()]
    return args


def snakemake(cluster, wd: Path, args: list[str], log: Path, timeout: int = 1200) -> tuple[int, str]:
    with open(log, "w") as out:
        p = subprocess.run(["snakemake", *args], cwd=wd, env=cluster.env, stdout=out, stderr=subprocess.STDOUT,
                           timeout=timeout)
    return p.returncode, log.read_text()


def job_ids(text: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", text)


def jobs_by_rule(text: str) -> dict[str, list[str]]:
    """{rule: [SLURM job ids]} from Snakemake's log: its job blocks (`rule X:` ... `jobid: N`) and the plugin's
    `Job N has been submitted with SLURM jobid M`."""
    rule_of = {j: r for r, j in re.findall(r"^\s*rule (\w+):\n(?:\s+.*\n)*?\s+jobid: (\d+)", text, re.M)}
    out: dict[str, list[str]] = {}
    for j, slurm_id in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text):
        out.setdefault(rule_of.get(j, "?"), []).append(slurm_id)
    return out


def explain(what: str, cluster, wd: Path | None = None, text: str = "") -> str:
    """What failed, Snakemake's output (the plugin's messages), the last SLURM job logs, the daemons' logs."""
    parts = [what, "--- Snakemake's output (tail)", text[-6000:]]
    if wd is not None:
        logs = sorted((wd / "logs/slurm").rglob("*.log"), key=lambda p: p.stat().st_mtime)[-3:] \
            if (wd / "logs/slurm").exists() else []
        for p in logs:
            parts += [f"--- {p.relative_to(wd)} (tail)", p.read_text()[-3000:]]
    parts += ["--- daemons", cluster.logs()]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ the run on the cluster
@pytest.fixture(scope="module")
def slurm_run(cluster, smoke_run, tmp_path_factory):
    """The smoke configuration through the cluster in a fresh copy of the workflow. First (on a node without GPUs)
    one GPU job is submitted as the rules declare it, to see the request SLURM gets; then the whole DAG."""
    wd = copy_workflow(tmp_path_factory.mktemp("slurm_pipeline"))
    r = {"wd": wd, "t0": time.perf_counter()}
    if not cluster.gpus:
        rc, text = snakemake(cluster, wd, [CANCELLED_TARGET] + profile_args(cluster, gpu=True), wd / "gpu_request.log")
        r["gpu_request"] = (rc, text)
    rc, text = snakemake(cluster, wd, profile_args(cluster, gpu=bool(cluster.gpus)), wd / "snakemake.log")
    r["seconds"] = time.perf_counter() - r["t0"]
    if rc != 0:
        pytest.fail(explain(f"snakemake --executor slurm failed ({rc})", cluster, wd, text))
    r["text"], r["ids"] = text, job_ids(text)
    print(f"SLURM run: {len(r['ids'])} jobs, ids {r['ids'][0]}..{r['ids'][-1]}, {r['seconds']:.0f} s")
    return r


def test_every_job_is_submitted_to_the_cluster_and_logs_where_expected(slurm_run, cluster):
    text, ids, wd = slurm_run["text"], slurm_run["ids"], slurm_run["wd"]
    planned = re.findall(r"^\s*rule (\w+):", text, re.M)  # `localrule all` runs in Snakemake itself
    assert len(planned) > 25 and len(ids) == len(planned), explain(
        f"{len(planned)} jobs planned, {len(ids)} sbatch ids in Snakemake's log", cluster, wd, text)
    by_rule = jobs_by_rule(text)
    assert len(by_rule.get("condense", [])) == 6 and "?" not in by_rule, by_rule
    assert "Unable to guess SLURM account. Trying to proceed without." in text  # no account: none is charged
    ctld = cluster.ctld_log.read_text()
    for i in ids:
        assert f"_slurm_rpc_submit_batch_job: JobId={i} " in ctld, explain(f"job {i} not in slurmctld's log", cluster)
        assert re.search(rf"_job_complete: JobId={i} WEXITSTATUS 0", ctld), explain(f"job {i} did not exit 0", cluster)
    # logs/slurm/rule_<rule>/<wildcards>/<jobid>.log: one per job (the profile keeps those of successful jobs)
    logs = {p.stem: p for p in (wd / "logs/slurm").rglob("*.log")}
    assert set(ids) <= set(logs), f"no SLURM log for jobs {sorted(set(ids) - set(logs))}"
    assert any(p.parent.parent.name == "rule_condense" for p in logs.values())
    # each rule's own log, where a local run writes it
    assert (wd / "logs/condense/FashionMNIST_ipc1_DC_set0.log").read_text().count("condense FashionMNIST") == 3


def test_a_gpu_rule_asks_slurm_for_a_gpu(slurm_run, cluster):
    """`resources: gpu=1` -> `sbatch --gpus=1`. A node with GPUs has gres/gpu and runs such jobs on a GPU; on this
    test's node without one, SLURM refuses the request at submission (so the main run used gpu=0)."""
    if cluster.gpus:
        job = jobs_by_rule(slurm_run["text"])["condense"][0]
        out = subprocess.run(["scontrol", "show", "job", job], env=cluster.env, capture_output=True, text=True).stdout
        assert "gres:gpu:1" in out or "gres/gpu=1" in out, out
        return
    rc, text = slurm_run["gpu_request"]
    assert rc != 0 and "--gpus=1" in text and "Invalid generic resource (gres) specification" in text, \
        explain("a gpu=1 job should be submitted with --gpus=1 (and refused by a node without GPUs)", cluster,
                slurm_run["wd"], text)
    assert "prepare_data" in text and re.search(r"Finished jobid: \d+ \(Rule: prepare_data\)", text), \
        "the CPU job before it ran"


# ----------------------------------------------------------------------------------------- bit for bit, local run
# measurements of the run itself, which differ between any two runs: wall and CPU times, run dates, and the
# condensation's peak resident memory (condense records it for DC Table T15)
TIMING = re.compile(r"seconds|wall|_utc$|elapsed|peak_memory")
NOT_COMPARED = {".png", ".svg", ".html", ".md"}  # rendered pages and figures: they embed run times; made from the above


def _drop_timing(x):
    if isinstance(x, dict):
        return {k: _drop_timing(v) for k, v in x.items() if not TIMING.search(k)}
    if isinstance(x, list):
        return [_drop_timing(v) for v in x]
    return x


def _csv_rows(path: Path) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [{k: v for k, v in row.items() if not TIMING.search(k)} for row in rows]


def same_artifact(a: Path, b: Path) -> str | None:
    """None when equal: .npz and .safetensors array by array (exact values, dtypes, shapes; the containers hold
    write times), .json and .csv value by value without timing fields, anything else byte for byte."""
    if a.suffix == ".npz":
        za, zb = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        if sorted(za.files) != sorted(zb.files):
            return f"arrays {sorted(za.files)} != {sorted(zb.files)}"
        for k in za.files:
            if za[k].dtype != zb[k].dtype or za[k].shape != zb[k].shape or not np.array_equal(za[k], zb[k]):
                return f"array {k} differs"
        return None
    if a.suffix == ".safetensors":
        from safetensors.numpy import load_file

        ta, tb = load_file(str(a)), load_file(str(b))
        if ta.keys() != tb.keys() or any(not np.array_equal(ta[k], tb[k]) or ta[k].dtype != tb[k].dtype for k in ta):
            return "tensors differ"
        return None
    if a.suffix == ".json":
        ja, jb = _drop_timing(json.loads(a.read_text())), _drop_timing(json.loads(b.read_text()))
        return None if ja == jb else "values differ (timing fields aside)"
    if a.suffix == ".csv":
        return None if _csv_rows(a) == _csv_rows(b) else "rows differ (timing columns aside)"
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def compare_runs(local: Path, other: Path, roots=("data", "reports")) -> tuple[list[str], list[str], list[str]]:
    """(compared, skipped, differences) over every file of the local run under `roots`."""
    compared, skipped, diffs = [], [], []
    for root in roots:
        for a in sorted((local / root).rglob("*")):
            if not a.is_file():
                continue
            rel = a.relative_to(local)
            if a.name == ".snakemake_timestamp":  # `snakemake --touch`'s mark on a directory output (the e2e test's)
                continue
            if a.suffix in NOT_COMPARED:
                skipped.append(str(rel))
                continue
            b = other / rel
            why = "missing" if not b.exists() else same_artifact(a, b)
            compared.append(str(rel))
            if why:
                diffs.append(f"{rel}: {why}")
    for root in roots:  # and nothing the local run lacks
        for b in (other / root).rglob("*"):
            if b.is_file() and b.name != ".snakemake_timestamp" and not (local / b.relative_to(other)).exists():
                diffs.append(f"{b.relative_to(other)}: only in {other}")
    return compared, skipped, diffs


def test_the_outputs_equal_the_local_runs_bit_for_bit(slurm_run, smoke_run):
    compared, skipped, diffs = compare_runs(smoke_run, slurm_run["wd"])
    print(f"compared {len(compared)} files with the local run (skipped {len(skipped)} rendered: {skipped})")
    kinds = {Path(c).suffix for c in compared}
    assert {".npz", ".json", ".csv"} <= kinds and len(compared) > 60, compared
    assert not diffs, "the SLURM run's outputs differ from the local run's:\n" + "\n".join(diffs)


# ------------------------------------------------------------------------------------------- scancel and resume
def _checkpoint_iteration(path: Path) -> int | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np") as f:
            return int((f.metadata() or {})["next_iteration"])
    except Exception:  # not there yet, or being replaced
        return None


def test_a_job_cancelled_mid_way_is_resubmitted_and_resumes_from_its_checkpoint(slurm_run, smoke_run, cluster,
                                                                                 tmp_path):
    """One condensation (CANCELLED_ITERATIONS iterations, a checkpoint every 2) through the cluster; once it has
    checkpointed, `scancel` kills it. The profile's `retries: 1` resubmits it, the new job resumes from the
    checkpoint, and its result equals an uninterrupted local run of the same configuration."""
    wd = slurm_run["wd"]
    params = yaml.safe_load((wd / "params.yaml").read_text())
    params["condense"]["iterations"][1] = CANCELLED_ITERATIONS
    (wd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    # the same configuration, uninterrupted, locally (alongside: the cluster job uses one core of two)
    local = copy_workflow(tmp_path / "local", params=wd / "params.yaml")
    (local / "data/prepared").mkdir(parents=True)
    for f in ("FashionMNIST.npz", "FashionMNIST.npz.json"):
        shutil.copy(smoke_run / "data/prepared" / f, local / "data/prepared" / f)
    local_log = open(tmp_path / "local.log", "w")
    local_run = subprocess.Popen(["snakemake", "--cores", "1", CANCELLED_TARGET], cwd=local, env=cluster.env,
                                 stdout=local_log, stderr=subprocess.STDOUT)

    log = tmp_path / "cancel.log"
    with open(log, "w") as out:
        smk = subprocess.Popen(["snakemake", CANCELLED_TARGET, *profile_args(cluster, gpu=bool(cluster.gpus))],
                               cwd=wd, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)
    ckpt = wd / (CANCELLED_TARGET + ".ckpt.safetensors")
    cancelled, at = None, None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and smk.poll() is None:
        it = _checkpoint_iteration(ckpt)
        if it is not None and it < CANCELLED_ITERATIONS and job_ids(log.read_text()):
            cancelled = job_ids(log.read_text())[0]
            subprocess.run(["scancel", cancelled], env=cluster.env, check=True)
            at = it
            break
        time.sleep(0.1)
    assert cancelled, explain("never saw the job mid-way (a checkpoint before its last iteration)", cluster, wd,
                              log.read_text())
    try:
        rc = smk.wait(timeout=600)
    finally:
        if smk.poll() is None:
            smk.kill()
    text = log.read_text()
    print(f"scancel {cancelled} after its checkpoint at iteration {at}")
    assert rc == 0, explain(f"the run with the cancelled job failed ({rc})", cluster, wd, text)

    state = subprocess.run(["squeue", "--states=all", "-h", "-j", cancelled, "-o", "%T"], env=cluster.env,
                           capture_output=True, text=True).stdout.strip()
    assert state == "CANCELLED", explain(f"job {cancelled} is {state!r} in squeue", cluster, wd, text)
    assert re.search(rf"_slurm_rpc_kill_job: REQUEST_KILL_JOB JobId={cancelled} ", cluster.ctld_log.read_text())
    ids = job_ids(text)
    assert len(ids) == 2 and ids[0] == cancelled and "Trying to restart job" in text, \
        explain(f"expected the cancelled job {cancelled} resubmitted once, got sbatch ids {ids}", cluster, wd, text)
    rule_log = (wd / "logs/condense/FashionMNIST_ipc1_DC_set0.log").read_text()  # the resubmitted job's
    m = re.search(r"resuming from \S+ at iteration (\d+)", rule_log)
    assert m and int(m.group(1)) >= at >= 2, f"the resubmitted job did not resume from the checkpoint:\n{rule_log}"
    assert f"condense FashionMNIST ipc1 DC set0 {int(m.group(1)) + 1}/{CANCELLED_ITERATIONS}" in rule_log
    assert not ckpt.exists(), "a finished job removes its checkpoint"

    assert local_run.wait(timeout=600) == 0, (tmp_path / "local.log").read_text()[-4000:]
    for suffix in ("", ".json"):
        why = same_artifact(local / (CANCELLED_TARGET + suffix), wd / (CANCELLED_TARGET + suffix))
        assert why is None, f"{CANCELLED_TARGET}{suffix}: resumed on the cluster vs uninterrupted locally: {why}"
    loss = CANCELLED_TARGET.replace(".npz", "_loss.csv")
    assert (local / loss).read_bytes() == (wd / loss).read_bytes()
