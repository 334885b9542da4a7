"""The benchmark runs end to end on a tiny slice and reports rates (no timing assertions: speed is measured, not tested)."""
import torch

from dcpipe import bench
from dcpipe.data import Data


def test_bench_reports_every_measurement_on_a_tiny_slice():
    # fake tensors: only the benchmark's plumbing is under test
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 28, 28, generator=g)
    y = torch.arange(10).repeat(4)
    res = bench.run(Data("fake", x, y, x, y, 10, (0.0,), (1.0,)), n_models=2, batch_real=8, epochs=2)
    for key in ("conv_microbenchmark_fp32", "real_gradient_pass_fp32", "test_pass_fp32", "test_pass_bf16"):
        assert res[key]["gflop"] > 0 and res[key]["gflop_per_s"] > 0
    assert res["evaluate_ipc1"]["max_accuracy_difference"] < 1e-6  # batched = one by one
    assert res["condense_ipc1_seconds_per_iteration"] > 0
