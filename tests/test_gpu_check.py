"""`make gpu-check` (dcpipe.gpu_check), as a specification: on a CPU it runs the same road as on a GPU with tiny
budgets, end to end on real FashionMNIST, and writes the JSON the report's speed section reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcpipe import gpu_check
from dcpipe.errors import ParamsError
from dcpipe.lease import GpuLease
from dcpipe.report.sections.speed import gpu_section

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_cuda_env(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset-by-test")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.delenv("DCPIPE_FAKE_GPUS", raising=False)


def test_every_test_marked_cuda_is_in_a_file_the_gpu_check_runs():
    marked = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")
              if re.search(r"mark\.cuda\b", p.read_text())}
    assert marked and marked <= set(gpu_check.CUDA_TEST_FILES), marked - set(gpu_check.CUDA_TEST_FILES)


def test_the_full_budget_is_the_papers_protocol_for_one_set():
    """K = 1000, 256 real images per class, 20 models of 300 epochs tested on all 10,000 test images, IPC-10
    timed at T = 10 outer and ς_θ = 50 inner steps (DC section 3 and appendix A)."""
    b = gpu_check.FULL
    assert (b.iterations, b.batch_real, b.models, b.epochs, b.test_images, b.ipc10_loops) == \
        (1000, 256, 20, 300, None, (10, 50))


def test_the_lease_check_passes_when_each_concurrent_job_gets_its_own_device(tmp_path, no_cuda_env):
    """No GPU here: 2 devices are faked; 2 jobs get slots 0 and 1, a third waits and then gets the freed one."""
    res = gpu_check.lease_check(tmp_path / "locks", cuda=False, timeout=60)
    assert res["faked"] and res["devices"] == 2
    assert sorted(j["visible"] for j in res["jobs"]) == ["0", "1"]
    assert res["extra_job"]["visible"] == res["jobs"][0]["visible"]
    assert res["ok"] and all(res["checks"].values()), res["checks"]


def test_the_lease_check_fails_when_the_jobs_cannot_get_their_own_devices(tmp_path, no_cuda_env, monkeypatch):
    """Both faked devices are held by another process (this one): no job gets one, and the check says so."""
    monkeypatch.setenv("DCPIPE_FAKE_GPUS", "2")
    held = [GpuLease(tmp_path / "locks", n_devices=2) for _ in range(2)]
    try:
        for lease in held:
            lease.acquire()
            os.environ.pop("CUDA_VISIBLE_DEVICES")  # as if each lease were another job's
        res = gpu_check.lease_check(tmp_path / "locks", cuda=False, timeout=1.0)
    finally:
        for lease in held:
            lease.release()
    assert not res["ok"]
    assert not res["checks"]["each_job_got_a_device"] and not res["checks"]["extra_job_got_the_freed_device"]


def test_a_bad_device_or_budget_is_one_error_line_listing_the_valid_names(capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.main(["--device", "tpu", "--out", os.devnull])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "error: unknown device 'tpu'; valid: auto, cpu, cuda"
    with pytest.raises(ParamsError, match="unknown budget 'huge'; valid: auto, full, tiny"):
        gpu_check.run(device="cpu", budget="huge")
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cpu", "--prepared", "/nonexistent/FashionMNIST.npz", "--out", os.devnull])
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "error: --prepared /nonexistent/FashionMNIST.npz: no such file (a FashionMNIST .npz written by prepare_data)"


@pytest.mark.slow
def test_the_cpu_mode_runs_the_whole_check_end_to_end_and_writes_its_json(tmp_path, prepared, no_cuda_env):
    """`python -m dcpipe.gpu_check` as `make gpu-check` runs it (a child process, PYTHONPATH=src), on real
    FashionMNIST: device auto is the CPU here, so the budget is the tiny one."""
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, "-m", "dcpipe.gpu_check", "--prepared", str(prepared("FashionMNIST")),
                          "--cache", str(tmp_path / "cache"), "--out", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    g = json.loads(out.read_text())
    tiny = gpu_check.TINY
    assert (g["device"], g["device_name"], g["torch"]) == ("cpu", "cpu", torch.__version__)
    assert g["budget"]["name"] == "tiny" and g["within_target"] is None  # the 8-minute target is the GPU's
    assert g["lease"]["ok"] and g["lease"]["faked"]
    tests = g["cuda_tests"]  # every cuda test collected and skipped here, none failed
    assert tests["ran"] and tests["returncode"] == 0 and tests["counts"].get("skipped", 0) >= 1
    assert not tests["counts"].get("passed") and not tests["counts"].get("failed")
    c1, ev = g["ipc1"]["condense"], g["ipc1"]["evaluate"]
    assert c1["config"]["iterations"] == tiny.iterations and c1["config"]["ipc"] == 1
    assert c1["seconds"] > 0 and c1["final_matching_loss"] > 0
    assert ev["test_images"] == tiny.test_images
    for how in ("batched", "one_by_one"):
        accs = ev[how]["accuracies"]
        assert len(accs) == tiny.models and all(0 <= a <= 100 for a in accs)
        assert ev[how]["mean"] == pytest.approx(sum(accs) / len(accs))
    # the same networks either way: the stack and the loop differ in summation order alone (a handful of images)
    assert ev["max_abs_difference_points"] <= 1.0
    assert g["ipc10"]["loops"] == list(tiny.ipc10_loops)
    assert len(g["ipc10"]["seconds_per_iteration"]) == tiny.ipc10_iterations
    assert all(s > 0 for s in g["ipc10"]["seconds_per_iteration"])
    assert g["ok"] and all(g["checks"].values()) and g["provenance"]["torch"] == torch.__version__
    # what the report's speed section makes of it
    s = gpu_section(g)
    assert s.metrics["recorded"] and s.metrics["ok"]
    assert s.comparisons[0].status.startswith("reduced budget: K = 3, 1 set × 3 models, 10 epochs")
    shown = " ".join([s.note, *(c for row in s.rows for c in row)])
    assert not any(raw in shown for raw in ("None", "True", "False", "`", "{'")), shown


def test_without_a_recorded_gpu_run_the_speed_section_says_so():
    s = gpu_section(None)
    assert s.metrics == {"recorded": False} and not s.comparisons
    assert "reports/records/gpu.json" in s.note and s.rows == [["GPU check", "not recorded", "–"]]


def test_a_committed_gpu_record_becomes_a_declared_input_of_the_report(tmp_path, monkeypatch):
    from dcpipe.report_files import report_inputs, section_keys
    from tests.report_fakes import fake_params

    params, _ = fake_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert report_inputs(params)["optional_records"] == []
    (tmp_path / "reports/records").mkdir(parents=True)
    (tmp_path / "reports/records/gpu.json").write_text("{}")
    assert report_inputs(params)["optional_records"] == ["reports/records/gpu.json"]
    assert "speed_gpu" in section_keys(params)
