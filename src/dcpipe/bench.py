"""`dcpipe bench`: where the time goes on this machine, as ratios against baselines measured in the same run.

- conv microbenchmark: ConvNet's middle 3x3 convolution (128 -> 128 channels, 16x16), forward + backward, in fp32
  and under bf16 autocast (NCHW, the layout every pass uses);
- the real-gradient pass of one matching step (batch_real images of one class through the default ConvNet), fp32
  and under bf16 autocast (condense.real_precision);
- the 10,000-image test pass (fp32 and bf16);
- the allocator: ConvNet forward + backward at batch 256 with glibc's default malloc against the process-wide
  setting of runtime.keep_freed_memory (restored afterwards);
- the real gradients of all classes: one vmapped pass against the per-class loop (condense.class_gradients);
- evaluating n models at IPC 1 and IPC 10: one by one (train_models) against a stacked batch (train_models_batched);
- one outer iteration of condensation at IPC 1 and IPC 10 with the given condensation settings;
- `baseline`: the speed switches' equal-work comparison, at the paper's settings (batch_real 256, loops [1, 1] and
  [10, 50], 300 evaluation epochs): BASELINE (no fusion, fp32 everywhere, per-class loop) against the switches of
  the params file, per outer iteration and per evaluated model, with each one's fraction of the conv
  microbenchmark of its precision.
FLOPs are counted with torch.utils.flop_counter; timings are the median of repeats after a warm-up.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from . import fused
from .condense import CondenseConfig, class_gradients, condense
from .data import Data
from .models import build_model
from .runtime import keep_freed_memory
from .precision import autocast, effective_precision
from .train import TrainConfig, train_models, train_models_batched

# The code path before the speed switches (eager, fp32 everywhere): the baseline of `dcpipe bench --baseline`.
BASELINE = {"fused": False, "real_precision": "fp32", "inner_precision": "fp32", "train_precision": "fp32",
            "test_precision": "fp32"}
SWITCHES = tuple(BASELINE)


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


def _evaluation(data: Data, ipc: int, n_models: int, epochs: int, test_precision: str) -> dict:
    idx = torch.cat([torch.nonzero(data.y_train == c).flatten()[:ipc] for c in range(data.num_classes)])
    x, y = data.x_train[idx], data.y_train[idx]
    out = {"ipc": ipc, "models": n_models, "epochs": epochs, "test_precision": test_precision}
    runs = {}
    for name, fn, cfg in (
            ("one_by_one_fp32", train_models, TrainConfig(epochs=epochs)),  # the pre-switch baseline
            ("one_by_one", train_models, TrainConfig(epochs=epochs, test_precision=test_precision)),
            ("batched", train_models_batched, TrainConfig(epochs=epochs, test_precision=test_precision))):
        t0 = time.perf_counter()
        runs[name] = fn("ConvNet", n_models, x, y, data.x_test, data.y_test, data.num_classes, cfg, seed=0)
        out[f"{name}_seconds_per_model"] = (time.perf_counter() - t0) / n_models
    out["batched_speedup"] = out["one_by_one_seconds_per_model"] / out["batched_seconds_per_model"]
    out["best_speedup_over_fp32_one_by_one"] = out["one_by_one_fp32_seconds_per_model"] / min(
        out["one_by_one_seconds_per_model"], out["batched_seconds_per_model"])
    out["max_accuracy_difference_batched"] = max(abs(a - b) for a, b in zip(runs["one_by_one"], runs["batched"]))
    return out


def run(data: Data, n_models: int = 20, batch_real: int = 256, epochs: dict | None = None,
        condense_cfgs: dict | None = None, test_precision: str = "auto") -> dict:
    """epochs: {ipc: training epochs} of the evaluations to time ({1: 300} by default); condense_cfgs:
    {ipc: CondenseConfig} of the condensations to time one outer iteration of (the paper's IPC 1 by default)."""
    dev = data.x_train.device
    out = {"threads": torch.get_num_threads(), "device": str(dev)}
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(dev)
    xin = torch.randn(batch_real, 128, 16, 16, device=dev, requires_grad=True)
    for precision in ("fp32", "bf16"):  # each pass is compared with the microbenchmark of its own precision
        def conv_pass():
            with autocast(dev, precision):
                conv(xin).sum().backward()
        out[f"conv_microbenchmark_{precision}"] = _rate(conv_pass)
    net = build_model("ConvNet", data.channels, data.num_classes, data.im_size).to(dev)
    params = list(net.parameters())
    real = data.x_train[:batch_real]
    y = torch.zeros(batch_real, dtype=torch.long, device=dev)
    for precision in ("fp32", "bf16"):
        def real_pass():
            with autocast(dev, precision):
                torch.autograd.grad(F.cross_entropy(net(real), y), params)
        out[f"real_gradient_pass_{precision}"] = _rate(real_pass)
    for precision in ("fp32", "bf16"):
        def test_pass():
            with torch.no_grad(), autocast(dev, precision):
                for i in range(0, len(data.y_test), 1000):
                    net(data.x_test[i:i + 1000])
        out[f"test_pass_{precision}"] = _rate(test_pass, repeats=1)
    for key in ("real_gradient_pass_fp32", "real_gradient_pass_bf16", "test_pass_fp32", "test_pass_bf16"):
        micro = out["conv_microbenchmark_" + key[-4:]]["gflop_per_s"]
        out[key]["fraction_of_conv_microbenchmark"] = out[key]["gflop_per_s"] / micro

    x256, y256 = data.x_train[:256], data.y_train[:256]
    step = lambda: F.cross_entropy(net(x256), y256).backward()  # noqa: E731
    if dev.type == "cpu" and keep_freed_memory(False):
        glibc = _time(step)
        keep_freed_memory(True)
        kept = _time(step)
        out["allocator"] = {"what": f"ConvNet forward+backward, batch {len(y256)}", "glibc_default_seconds": glibc,
                            "keep_freed_memory_seconds": kept, "speedup": glibc / kept}

    per_class = torch.stack([data.x_train[torch.nonzero(data.y_train == c).flatten()[:batch_real]]
                             for c in range(data.num_classes)])
    loop = _time(lambda: class_gradients(net, per_class, vectorised=False), repeats=1)
    vec = _time(lambda: class_gradients(net, per_class, vectorised=True), repeats=1)
    out["class_gradients"] = {"classes": data.num_classes, "batch_per_class": per_class.shape[1],
                              "loop_seconds": loop, "vmap_seconds": vec, "vmap_speedup": loop / vec}

    for ipc, n_epochs in (epochs or {1: 300}).items():
        out[f"evaluate_ipc{ipc}"] = _evaluation(data, int(ipc), n_models, n_epochs, test_precision)
    for ipc, cfg in (condense_cfgs or {1: CondenseConfig(ipc=1, batch_real=batch_real)}).items():
        cfg = dataclasses.replace(cfg, iterations=1, checkpoint_every=10**9)
        t0 = time.perf_counter()
        condense(data, cfg, seed=0)
        out[f"condense_ipc{ipc}"] = {"seconds_per_iteration": time.perf_counter() - t0,
                                     "batch_real": cfg.batch_real, "loops": list(cfg.loops()),
                                     "vectorise_classes": cfg.vectorise_classes,
                                     "real_precision": cfg.real_precision}
    return out


def _step_rate(data: Data, precision: str, batch: int = 256) -> dict:
    """GFLOP/s of one ConvNet training step (forward, backward, SGD) at `batch`, under the current fusion switch."""
    dev = data.x_train.device
    net = build_model("ConvNet", data.channels, data.num_classes, data.im_size).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    xb, yb = data.x_train[:batch], data.y_train[:batch]

    def step():
        with autocast(dev, precision):
            loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    before = fused.enabled()
    fused.set_enabled(False)  # the counter does not see inside the fused ops: count the same step's eager ops
    try:
        flops = _flops(step)
    finally:
        fused.set_enabled(before)
    sec = _time(step)
    return {"seconds": sec, "gflop": flops / 1e9, "gflop_per_s": flops / 1e9 / sec}


def baseline(data: Data, switches: dict, n_models: int = 2, condense_cfgs: dict | None = None,
             epochs: dict | None = None) -> dict:
    """Equal work, two code paths, one run: BASELINE against `switches` (the keys of SWITCHES). condense_cfgs:
    {ipc: CondenseConfig} at the paper's settings (default: IPC 1 loops [1, 1] and IPC 10 loops [10, 50],
    batch_real 256); epochs: {ipc: evaluation epochs} (default 300 for both). Each mode's conv microbenchmark
    rate is measured in the same run, per precision."""
    dev = data.x_train.device
    condense_cfgs = condense_cfgs or {1: CondenseConfig(ipc=1, batch_real=256),
                                      10: CondenseConfig(ipc=10, batch_real=256, init="real")}
    epochs = epochs or {1: 300, 10: 300}
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(dev)
    xin = torch.randn(256, 128, 16, 16, device=dev, requires_grad=True)
    micro = {}
    for precision in ("fp32", "bf16"):
        def conv_pass():
            with autocast(dev, precision):
                conv(xin).sum().backward()
        micro[precision] = _rate(conv_pass)["gflop_per_s"]
    out = {"settings": {"batch_real": 256, "loops": {i: list(c.loops()) for i, c in condense_cfgs.items()},
                        "evaluation_epochs": epochs, "models": n_models},
           "conv_microbenchmark_gflop_per_s": micro, "modes": {}}
    before = fused.enabled()
    try:
        for mode, sw in (("baseline", BASELINE), ("default", {k: switches[k] for k in SWITCHES})):
            fused.set_enabled(sw["fused"])
            m = {"switches": sw}
            step = _step_rate(data, sw["train_precision"])
            m["training_step_batch256"] = {**step, "fraction_of_conv_microbenchmark":
                                           step["gflop_per_s"] / micro[effective_precision(dev, sw["train_precision"])]}
            for ipc, cfg in condense_cfgs.items():
                cfg = dataclasses.replace(cfg, iterations=1, checkpoint_every=10**9, vectorise_classes="off",
                                          real_precision=sw["real_precision"], inner_precision=sw["inner_precision"])
                condense(data, dataclasses.replace(cfg, outer_loop=1, inner_loop=1), seed=0)  # warm-up
                t0 = time.perf_counter()
                condense(data, cfg, seed=0)
                m[f"condense_ipc{ipc}_seconds_per_iteration"] = time.perf_counter() - t0
            for ipc, n_epochs in epochs.items():
                idx = torch.cat([torch.nonzero(data.y_train == c).flatten()[:ipc] for c in range(data.num_classes)])
                cfg = TrainConfig(epochs=n_epochs, train_precision=sw["train_precision"],
                                  test_precision=sw["test_precision"])
                t0 = time.perf_counter()
                accs = train_models("ConvNet", n_models, data.x_train[idx], data.y_train[idx], data.x_test,
                                    data.y_test, data.num_classes, cfg, seed=0)
                m[f"evaluate_ipc{ipc}_seconds_per_model"] = (time.perf_counter() - t0) / n_models
                m[f"evaluate_ipc{ipc}_accuracies"] = accs
            out["modes"][mode] = m
    finally:
        fused.set_enabled(before)
    b, d = out["modes"]["baseline"], out["modes"]["default"]
    out["speedup"] = {k.replace("_seconds_per_iteration", "_per_iteration").replace("_seconds_per_model", "_per_model"):
                      b[k] / d[k] for k in b if k.endswith(("_seconds_per_iteration", "_seconds_per_model"))}
    return out
