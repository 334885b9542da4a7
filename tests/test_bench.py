"""The benchmark runs end to end on a tiny slice and reports rates (no timing assertions: speed is measured, not tested)."""
import sys

import torch

from dcpipe import bench
from dcpipe.condense import CondenseConfig
from dcpipe.data import Data


def test_bench_reports_every_measurement_on_a_tiny_slice():
    # fake tensors: only the benchmark's plumbing is under test
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 28, 28, generator=g)
    y = torch.arange(10).repeat(4)
    cfgs = {1: CondenseConfig(ipc=1, batch_real=4), 10: CondenseConfig(ipc=1, batch_real=4, outer_loop=2, inner_loop=2)}
    res = bench.run(Data("fake", x, y, x, y, 10, (0.0,), (1.0,)), n_models=2, batch_real=4, epochs={1: 2},
                    condense_cfgs=cfgs)
    for key in ("conv_microbenchmark_fp32", "conv_microbenchmark_bf16", "real_gradient_pass_fp32",
                "real_gradient_pass_bf16", "test_pass_fp32", "test_pass_bf16"):
        assert res[key]["gflop"] > 0 and res[key]["gflop_per_s"] > 0
    assert res["evaluate_ipc1"]["max_accuracy_difference_batched"] < 1e-6  # batched = one by one
    assert res["condense_ipc1"]["seconds_per_iteration"] > 0 and res["condense_ipc10"]["loops"] == [2, 2]
    assert res["class_gradients"]["vmap_seconds"] > 0
    if sys.platform.startswith("linux"):  # glibc: the allocator setting is measured against glibc's default
        assert res["allocator"]["glibc_default_seconds"] > 0 and res["allocator"]["speedup"] > 0


def test_the_report_shows_the_headline_run_with_the_papers_band():
    from dcpipe.report.sections.speed import headline_section

    # a hand-written headline record (two sets), only the report's reading of it is under test
    sets = [{"set": k, "mean": 70.0 + k, "std": 0.5, "models": 20, "condense_wall_seconds": 600.0,
             "condense_seconds_per_iteration": 0.6, "evaluate_wall_seconds": 120.0} for k in range(2)]
    s = headline_section({
        "what": "DC, FashionMNIST, 1 image/class, K = 1000, 2 sets x 20 ConvNets x 300 epochs", "commit": "0123456789ab",
        "wall_clock_snakemake": "55:00", "command": "snakemake ...", "machine": "2 cores", "accuracy_mean": 70.5,
        "accuracy_std": 0.7, "n_models": 40, "departures_from_paper": {"condense.batch_real": "64"}, "sets": sets})
    assert "headline" in s.title and "55:00" in s.note and "condense.batch_real: 64" in s.note
    assert s.rows[-1][:3] == ["all (paper: 70.5 ± 0.6)", "70.5 ± 0.7", "40"] and s.rows[1][1] == "71.0 ± 0.5"
    # 2 sets, not the paper's 5: its budget is the status, not the band
    [c] = s.comparisons
    assert c.status == "reduced budget: K = 1000, 2 sets × 20 models, 300 epochs"


def test_the_baseline_mode_times_both_code_paths_at_equal_work_and_restores_the_switch():
    # fake tensors: only the benchmark's plumbing is under test
    from dcpipe import fused

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 28, 28, generator=g)
    y = torch.arange(10).repeat(4)
    switches = {"fused": True, "real_precision": "auto", "inner_precision": "auto", "train_precision": "auto",
                "test_precision": "auto"}  # params.yaml's
    cfgs = {1: CondenseConfig(ipc=1, batch_real=4), 10: CondenseConfig(ipc=1, batch_real=4, outer_loop=2, inner_loop=2)}
    before = fused.enabled()
    res = bench.baseline(Data("fake", x, y, x, y, 10, (0.0,), (1.0,)), switches, n_models=1, condense_cfgs=cfgs,
                         epochs={1: 2})
    assert fused.enabled() == before
    assert res["modes"]["baseline"]["switches"] == bench.BASELINE and res["modes"]["default"]["switches"] == switches
    assert set(res["speedup"]) == {"condense_ipc1_per_iteration", "condense_ipc10_per_iteration", "evaluate_ipc1_per_model"}
    assert all(v > 0 for v in res["speedup"].values())
    for mode in res["modes"].values():
        assert 0 < mode["training_step_batch256"]["fraction_of_conv_microbenchmark"]
    # equal work: the fused first block hides its conv from the FLOP counter, so both modes count the eager step
    steps = [m["training_step_batch256"]["gflop"] for m in res["modes"].values()]
    assert steps[0] == steps[1]
    assert res["settings"]["loops"] == {1: [1, 1], 10: [2, 2]}


def test_the_report_shows_the_equal_work_bench_and_the_training_precision_check():
    from dcpipe.report.sections.speed import baseline_section, precision_train_section

    # hand-written records: only the report's reading of them is under test
    mode = lambda sec, prec: {"switches": {"fused": prec == "bf16", "train_precision": prec},  # noqa: E731
                              "training_step_batch256": {"seconds": sec, "gflop_per_s": 100 / sec,
                                                         "fraction_of_conv_microbenchmark": 0.3},
                              "condense_ipc1_seconds_per_iteration": 4 * sec, "evaluate_ipc1_seconds_per_model": sec}
    b = {"settings": {"batch_real": 256, "loops": {"1": [1, 1]}, "evaluation_epochs": {"1": 300}, "models": 2},
         "modes": {"baseline": mode(1.0, "fp32"), "default": mode(0.5, "bf16")},
         "speedup": {"condense_ipc1_per_iteration": 2.0, "evaluate_ipc1_per_model": 2.0}}
    s = baseline_section(b)
    assert s.rows[0] == ["condense IPC 1: s per iteration", "4.00", "2.00", "2.00×"]
    assert s.rows[1] == ["evaluate IPC 1: s per model", "1.00", "0.50", "2.00×"]
    assert "fused on" in s.note and "real batch 256/class" in s.note and "1 × 1 (IPC 1)" in s.note
    assert "Not recorded" in baseline_section(None).note
    # a record names the machine that timed it; older records, made before provenance named one, say nothing
    assert " on " not in s.note.split(":")[0]
    b["provenance"] = {"git_commit": "0123456789", "cpu": "Some CPU", "cpu_capability": "AVX512", "gpu": None}
    assert "commit 01234567 on Some CPU (AVX512):" in baseline_section(b).note
    check = {"train_set": "a.npz", "epochs": 300, "fp32": {"mean": 70.0, "std": 0.5, "accuracies": [0.7] * 3},
             "bf16": {"mean": 70.25, "std": 0.4, "accuracies": [0.7] * 3}, "mean_difference_points": 0.25}
    p = precision_train_section({"checks": [check]})
    assert p.rows == [["a.npz", "300", "70.0 ± 0.5", "70.2 ± 0.4", "+0.25"]] and p.metrics == {
        "max_abs_mean_difference_points": 0.25}
