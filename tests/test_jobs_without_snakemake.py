"""workflow/jobs_without_snakemake.py: Snakemake's own commands, run wave by wave where Snakemake is not installed
(a lent GPU machine): the same jobs, in an order that respects every dependency, and a failure stops the script."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("jobs_without_snakemake", ROOT / "workflow/jobs_without_snakemake.py")
jws = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jws)


def run_script(tmp_path, jobs) -> subprocess.CompletedProcess:
    path = tmp_path / "jobs.sh"
    path.write_text(jws.script(jobs))
    return subprocess.run(["bash", str(path), "2"], cwd=tmp_path, capture_output=True, text=True)


def test_each_rule_starts_after_every_job_of_the_rules_before_it(tmp_path):
    jobs = [("evaluate", ["e/x.json"], ["logs/e.log"], "cat c/a c/b > e/x.json"),
            ("condense", ["c/a"], [], "sleep 0.2; echo a > c/a"), ("condense", ["c/b"], [], "echo b > c/b"),
            ("prepare_data", ["p/d"], [], "echo d > p/d"), ("report", ["r/index.md"], [], "touch r/index.md")]
    res = run_script(tmp_path, jobs)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "e/x.json").read_text() == "a\nb\n"  # evaluate waited for the slower condense job
    assert not (tmp_path / "r/index.md").exists()  # the report is built where Snakemake is
    assert (tmp_path / "logs").is_dir()


def test_a_failed_job_stops_the_script_before_the_next_rule(tmp_path):
    res = run_script(tmp_path, [("prepare_data", ["p/d"], [], "false"), ("condense", ["c/a"], [], "touch c/a")])
    assert res.returncode == 1
    assert "FAILED: " in res.stderr and "else false; fi" in res.stderr
    assert not (tmp_path / "c/a").exists()


def test_a_rerun_skips_the_jobs_whose_outputs_exist_and_runs_the_rest(tmp_path):
    """A script cut off at a lent machine's time limit resumes where it stopped."""
    jobs = [("condense", ["c/a", "c/a.json"], [], "echo again >> c/a; touch c/a.json"),
            ("condense", ["c/b", "c/b.json"], [], "echo b > c/b; touch c/b.json"),
            ("evaluate", ["e/x"], [], "cat c/a c/b > e/x")]
    (tmp_path / "c").mkdir()
    (tmp_path / "c/a").write_text("first\n")
    (tmp_path / "c/a.json").touch()
    (tmp_path / "c/b").write_text("partial\n")  # one output of two: the job runs again
    res = run_script(tmp_path, jobs)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "e/x").read_text() == "first\nb\n"
    assert "done already: c/a" in res.stdout


def test_the_gpu_protocol_files_dry_run_becomes_every_one_of_its_jobs_in_dependency_order():
    text = jws.dry_run(["--config", "params=config/protocol_mnist_dc_gpu.yaml"])
    jobs = jws.jobs(text)
    rules = [r for r, _, _, _ in jobs]
    assert {"prepare_data", "condense", "evaluate", "report"} <= set(rules)
    script = jws.script(jobs)
    commands = [ln for ln in script.splitlines() if "python workflow/scripts/" in ln]
    assert len(commands) == sum(r not in ("all", "report") for r in rules) == 1 + 1 + 5 + 5  # download, prepare, 5 sets, 5 evaluations
    waves = [ln.split()[3].rstrip(":") for ln in script.splitlines() if ln.startswith('echo "$(date +%T) ')
             and "jobs" in ln]
    assert waves == sorted(waves, key=jws.WAVES.index)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
