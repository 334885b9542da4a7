"""workflow/jobs_without_snakemake.py: Snakemake's own commands, run wave by wave where Snakemake is not installed
(a lent GPU machine): the DAG's jobs, in waves that respect every dependency, and a failure stops the script."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

from tests.conftest import ROOT, copy_workflow

spec = importlib.util.spec_from_file_location("jobs_without_snakemake", ROOT / "workflow/jobs_without_snakemake.py")
jws = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jws)


def job(rule, cmd, output, input=(), log=()):
    return {"rule": rule, "wildcards": {}, "input": list(input), "output": list(output), "log": list(log), "cmd": cmd}


def run_script(tmp_path, jobs) -> subprocess.CompletedProcess:
    path = tmp_path / "jobs.sh"
    path.write_text(jws.script(jobs))
    return subprocess.run(["bash", str(path), "2"], cwd=tmp_path, capture_output=True, text=True)


def test_each_job_starts_after_every_job_it_reads_from(tmp_path):
    jobs = [job("evaluate", "cat c/a c/b > e/x.json", ["e/x.json"], ["c/a", "c/b"], ["logs/e.log"]),
            job("condense", "sleep 0.2; echo a > c/a", ["c/a"], ["p/d"]), job("condense", "echo b > c/b", ["c/b"], ["p/d"]),
            job("prepare_data", "echo d > p/d", ["p/d"]), job("report", "touch r/index.md", ["r/index.md"], ["e/x.json"])]
    res = run_script(tmp_path, jobs)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "e/x.json").read_text() == "a\nb\n"  # evaluate waited for the slower condense job
    assert not (tmp_path / "r/index.md").exists()  # the report is built where Snakemake is
    assert (tmp_path / "logs").is_dir()


def test_a_failed_job_stops_the_script_before_the_next_wave(tmp_path):
    res = run_script(tmp_path, [job("prepare_data", "false", ["p/d"]), job("condense", "touch c/a", ["c/a"], ["p/d"])])
    assert res.returncode == 1
    assert "FAILED: " in res.stderr and "else false; fi" in res.stderr
    assert not (tmp_path / "c/a").exists()


def test_a_rerun_skips_the_jobs_whose_outputs_exist_and_runs_the_rest(tmp_path):
    """A script cut off at a lent machine's time limit resumes where it stopped."""
    jobs = [job("condense", "echo again >> c/a; touch c/a.json", ["c/a", "c/a.json"]),
            job("condense", "echo b > c/b; touch c/b.json", ["c/b", "c/b.json"]),
            job("evaluate", "cat c/a c/b > e/x", ["e/x"], ["c/a", "c/b"])]
    (tmp_path / "c").mkdir()
    (tmp_path / "c/a").write_text("first\n")
    (tmp_path / "c/a.json").touch()
    (tmp_path / "c/b").write_text("partial\n")  # one output of two: the job runs again
    res = run_script(tmp_path, jobs)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "e/x").read_text() == "first\nb\n"
    assert "done already: c/a" in res.stdout


def test_the_gpu_protocol_files_jobs_become_every_one_of_its_jobs_in_dependency_order(tmp_path, monkeypatch, capsys):
    """In a copy of the workflow (the checkout's own data/ would make no difference, and is never read)."""
    wd = copy_workflow(tmp_path)
    shutil.copytree(ROOT / "config", wd / "config")
    monkeypatch.chdir(wd)
    jws.main(["--config", "params=config/protocol_mnist_dc_gpu.yaml"])
    script = capsys.readouterr().out
    commands = [ln for ln in script.splitlines() if "python workflow/scripts/" in ln]
    rules = [c.split("python workflow/scripts/")[1].split(".py")[0] for c in commands]
    assert sorted(set(rules)) == ["condense", "download", "evaluate", "prepare_data"]
    assert len(commands) == 1 + 1 + 5 + 5  # download, prepare, 5 sets, 5 evaluations
    assert rules == sorted(rules, key=["download", "prepare_data", "condense", "evaluate"].index)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert not (wd / "data").exists()


def test_waves_put_each_job_after_the_jobs_that_make_its_inputs():
    from dcpipe.dvcgen import waves

    jobs = [job("b", "", ["d/b"], ["d/a", "existing"]), job("a", "", ["d/a"]), job("c", "", ["d/c"], ["d/b", "d/a"]),
            job("r", "", ["figs"]), job("s", "", ["s"], ["figs/x.png"])]
    assert [[j["rule"] for j in w] for w in waves(jobs)] == [["a", "r"], ["b", "s"], ["c"]]
