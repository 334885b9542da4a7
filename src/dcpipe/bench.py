"""`dcpipe bench`: where the time goes on this machine, as ratios against baselines measured in the same run.

- conv microbenchmark: ConvNet's middle 3x3 convolution (128 -> 128 channels, 16x16), forward + backward;
- the real-gradient pass of one matching step (batch_real images of one class through the default ConvNet);
- the 10,000-image test pass (fp32 and bf16);
- evaluating n IPC-1 models: one by one (train_models) against a stacked batch (train_models_batched);
- one outer iteration of condensation at IPC 1.
FLOPs are counted with torch.utils.flop_counter; timings are the median of repeats after a warm-up.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .condense import CondenseConfig, condense
from .data import Data
from .models import build_model
from .train import TrainConfig, train_models, train_models_batched


def _time(fn, repeats=3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def _rate(fn, repeats=3) -> dict:
    flops, sec = _flops(fn), _time(fn, repeats)
    return {"seconds": sec, "gflop": flops / 1e9, "gflop_per_s": flops / 1e9 / sec}


def run(data: Data, n_models: int = 20, batch_real: int = 256, epochs: int = 300) -> dict:
    dev = data.x_train.device
    out = {"threads": torch.get_num_threads(), "device": str(dev)}
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(dev)
    xin = torch.randn(batch_real, 128, 16, 16, device=dev, requires_grad=True)
    out["conv_microbenchmark_fp32"] = _rate(lambda: conv(xin).sum().backward())
    net = build_model("ConvNet", data.channels, data.num_classes, data.im_size).to(dev)
    params = list(net.parameters())
    real = data.x_train[:batch_real]
    y = torch.zeros(batch_real, dtype=torch.long, device=dev)
    out["real_gradient_pass_fp32"] = _rate(lambda: torch.autograd.grad(F.cross_entropy(net(real), y), params))
    for precision in ("fp32", "bf16"):
        def test_pass():
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                for i in range(0, len(data.y_test), 1000):
                    net(data.x_test[i:i + 1000])
        out[f"test_pass_{precision}"] = _rate(test_pass, repeats=1)
    for key in ("real_gradient_pass_fp32", "test_pass_fp32"):
        out[key]["fraction_of_conv_microbenchmark"] = (out[key]["gflop_per_s"]
                                                      / out["conv_microbenchmark_fp32"]["gflop_per_s"])
    # n IPC-1 evaluation models: one by one against one stacked batch (same seeds, same protocol)
    idx = torch.cat([torch.nonzero(data.y_train == c).flatten()[:1] for c in range(data.num_classes)])
    x1, y1 = data.x_train[idx], data.y_train[idx]
    cfg = TrainConfig(epochs=epochs)
    t0 = time.perf_counter()
    seq = train_models("ConvNet", n_models, x1, y1, data.x_test, data.y_test, data.num_classes, cfg, seed=0)
    t_seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    bat = train_models_batched("ConvNet", n_models, x1, y1, data.x_test, data.y_test, data.num_classes, cfg, seed=0)
    t_bat = time.perf_counter() - t0
    out["evaluate_ipc1"] = {"models": n_models, "epochs": epochs, "one_by_one_seconds_per_model": t_seq / n_models,
                            "batched_seconds_per_model": t_bat / n_models, "speedup": t_seq / t_bat,
                            "max_accuracy_difference": max(abs(a - b) for a, b in zip(seq, bat))}
    t0 = time.perf_counter()
    condense(data, CondenseConfig(ipc=1, iterations=2, batch_real=batch_real), seed=0)
    out["condense_ipc1_seconds_per_iteration"] = (time.perf_counter() - t0) / 2
    return out
